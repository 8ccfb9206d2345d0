"""Notifications: preferences, the outbox, and delivery to a real SMTP server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from anyio.to_thread import run_sync
from fastapi import FastAPI
from servers.postgres import free_port
from servers.processes import SmtpSink
from sqlalchemy import select

from asyncpress.comments.schemas import NewComment
from asyncpress.comments.service import Comments
from asyncpress.core.config import Settings
from asyncpress.core.uow import Database
from asyncpress.notifications.delivery import Outbox
from asyncpress.notifications.mail import message_id
from asyncpress.notifications.models import OutboxMessage
from asyncpress.users.models import User
from tests.factories import Account, add_comment, create_article, register
from tests.support.app import (
    failing_at_commit,
    make_settings,
    refused_at_last_write,
    row_count,
    wired,
)

PUBLIC_URL = "https://conduit.example"


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[SmtpSink]:
    server = SmtpSink(free_port(), tmp_path / "inbox", tmp_path).start()
    yield server
    server.stop()


@pytest.fixture
def settings(database_url: str, sink: SmtpSink) -> Settings:
    return make_settings(
        database_url,
        smtp_url=sink.url,
        public_url=PUBLIC_URL,
        outbox_in_process=True,
        outbox_sweep_s=0.2,
        notify_backoff_base_s=0.05,
    )


async def arrived(sink: SmtpSink, count: int, within_s: float = 15) -> list[EmailMessage]:
    async with asyncio.timeout(within_s):
        while True:
            found = await run_sync(sink.messages)
            if len(found) >= count:
                return found
            await asyncio.sleep(0.05)


async def outbox_rows(app: FastAPI) -> list[OutboxMessage]:
    async with wired(app, Database).sessionmaker() as session:
        return list((await session.execute(select(OutboxMessage))).scalars().all())


async def statuses_become(app: FastAPI, wanted: list[str], within_s: float) -> bool:
    """Whether the outbox rows' statuses reach ``wanted`` within the time (polled)."""
    async with asyncio.timeout(within_s):
        while [row.status for row in await outbox_rows(app)] != wanted:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    return True


async def settle(app: FastAPI) -> None:
    """Deliver everything that is due, now."""
    await wired(app, Outbox).drain()


async def assert_nothing_sent(app: FastAPI, sink: SmtpSink) -> None:
    await settle(app)
    assert await row_count(app, "outbox") == 0
    assert await run_sync(sink.messages) == []


async def set_preferences(client: httpx.AsyncClient, account: Account, **wanted: bool) -> None:
    response = await client.put(
        "/api/user/notifications", json={"notifications": wanted}, headers=account.headers
    )
    assert response.status_code == 200


class TestPreferences:
    async def test_defaults(self, client: httpx.AsyncClient) -> None:
        alice = await register(client)
        response = await client.get("/api/user/notifications", headers=alice.headers)
        assert response.status_code == 200
        assert response.json() == {
            "notifications": {
                "commentOnMyArticle": True,
                "newFollower": True,
                "favoriteOfMyArticle": False,
            }
        }

    async def test_partial_update(self, client: httpx.AsyncClient) -> None:
        alice = await register(client)
        response = await client.put(
            "/api/user/notifications",
            json={"notifications": {"newFollower": False, "favoriteOfMyArticle": True}},
            headers=alice.headers,
        )
        assert response.json()["notifications"] == {
            "commentOnMyArticle": True,
            "newFollower": False,
            "favoriteOfMyArticle": True,
        }
        again = await client.get("/api/user/notifications", headers=alice.headers)
        assert again.json() == response.json()

    @pytest.mark.parametrize(
        ("body", "field", "message"),
        [
            ({"notifications": {"weekly": True}}, "weekly", "is not a known setting"),
            ({"notifications": {"newFollower": "yes"}}, "newFollower", "must be true or false"),
            ({"notifications": {"newFollower": 1}}, "newFollower", "must be true or false"),
            ({"newFollower": True}, "notifications", "can't be blank"),
        ],
    )
    async def test_bad_input_is_refused_and_nothing_changes(
        self, client: httpx.AsyncClient, body: dict[str, Any], field: str, message: str
    ) -> None:
        alice = await register(client)
        response = await client.put("/api/user/notifications", json=body, headers=alice.headers)
        assert response.status_code == 422
        assert response.json()["errors"][field] == [message]
        again = await client.get("/api/user/notifications", headers=alice.headers)
        assert again.json()["notifications"]["newFollower"] is True

    async def test_needs_a_token(self, client: httpx.AsyncClient) -> None:
        assert (await client.get("/api/user/notifications")).status_code == 401
        assert (await client.put("/api/user/notifications", json={})).status_code == 401


class TestDelivery:
    async def test_comment_mail_reaches_the_author(
        self, client: httpx.AsyncClient, app: FastAPI, sink: SmtpSink
    ) -> None:
        alice = await register(client, "alice")
        bob = await register(client, "bob")
        slug = (await create_article(client, alice, title="Dragons & <Knights>"))["slug"]
        comment = await add_comment(client, bob, slug, "Lovely <b>work</b>!")
        (mail,) = await arrived(sink, 1)
        assert mail["To"] == alice.email
        assert mail["Subject"] == 'bob commented on "Dragons & <Knights>"'
        mail_from = wired(app, Settings).mail_from
        assert mail["Message-ID"] == message_id(f"comment:{comment['id']}", mail_from)
        text = mail.get_body(preferencelist=("plain",))
        html = mail.get_body(preferencelist=("html",))
        assert text is not None
        assert html is not None
        assert f"{PUBLIC_URL}/article/{slug}" in text.get_content()
        assert "Lovely <b>work</b>!" in text.get_content()
        assert f'href="{PUBLIC_URL}/article/{slug}"' in html.get_content()
        assert "Lovely &lt;b&gt;work&lt;/b&gt;!" in html.get_content()  # escaped in HTML

    async def test_follow_and_favorite_mail(
        self, client: httpx.AsyncClient, app: FastAPI, sink: SmtpSink
    ) -> None:
        alice = await register(client, "alice")
        bob = await register(client, "bob")
        await set_preferences(client, alice, favoriteOfMyArticle=True)
        slug = (await create_article(client, alice))["slug"]
        await client.post("/api/profiles/alice/follow", headers=bob.headers)
        await client.post(f"/api/articles/{slug}/favorite", headers=bob.headers)
        mails = await arrived(sink, 2)
        assert sorted(str(m["Subject"]) for m in mails) == sorted(
            ["bob now follows you", f'bob favorited "{(await _title(client, slug))}"']
        )
        assert {m["To"] for m in mails} == {alice.email}
        links = {
            "bob now follows you": f"{PUBLIC_URL}/profile/bob",
            f'bob favorited "{await _title(client, slug)}"': f"{PUBLIC_URL}/article/{slug}",
        }
        for mail in mails:
            body = mail.get_body(preferencelist=("plain",))
            assert body is not None
            assert links[str(mail["Subject"])] in body.get_content()

    async def test_repeating_an_action_sends_once(
        self, client: httpx.AsyncClient, app: FastAPI, sink: SmtpSink
    ) -> None:
        await register(client, "alice")
        bob = await register(client, "bob")
        for _ in range(3):
            await client.post("/api/profiles/alice/follow", headers=bob.headers)
            await client.delete("/api/profiles/alice/follow", headers=bob.headers)
        await client.post("/api/profiles/alice/follow", headers=bob.headers)
        await settle(app)
        await arrived(sink, 1)
        await asyncio.sleep(0.3)
        assert len(await run_sync(sink.messages)) == 1
        assert await row_count(app, "outbox") == 1

    async def test_nothing_for_ones_own_actions(
        self, client: httpx.AsyncClient, app: FastAPI, sink: SmtpSink
    ) -> None:
        alice = await register(client, "alice")
        await set_preferences(client, alice, favoriteOfMyArticle=True)
        slug = (await create_article(client, alice))["slug"]
        await add_comment(client, alice, slug)
        await client.post(f"/api/articles/{slug}/favorite", headers=alice.headers)
        await assert_nothing_sent(app, sink)

    async def test_preferences_off_means_no_mail(
        self, client: httpx.AsyncClient, app: FastAPI, sink: SmtpSink
    ) -> None:
        alice = await register(client, "alice")
        bob = await register(client, "bob")
        await set_preferences(client, alice, commentOnMyArticle=False, newFollower=False)
        slug = (await create_article(client, alice))["slug"]
        await add_comment(client, bob, slug)
        await client.post("/api/profiles/alice/follow", headers=bob.headers)
        await client.post(f"/api/articles/{slug}/favorite", headers=bob.headers)  # off by default
        await assert_nothing_sent(app, sink)

    async def test_a_comment_that_rolls_back_sends_nothing(
        self, client: httpx.AsyncClient, app: FastAPI, sink: SmtpSink, backend: str
    ) -> None:
        """The comment and its message are written together or not at all: in
        a unit of work whose commit fails, or, on PostgreSQL, in the one
        statement that adds both (comments.posting), when its last part fails."""
        alice = await register(client, "alice")
        await register(client, "bob")
        slug = (await create_article(client, alice))["slug"]
        db = wired(app, Database)
        async with db.session() as session:
            author = (
                await session.execute(select(User).where(User.username == "bob"))
            ).scalar_one()
        failing, followed = failing_at_commit(db)
        # On PostgreSQL the message is the statement's last write: refuse it.
        check = "payload->>'excerpt' IS DISTINCT FROM 'never'"
        refused = await refused_at_last_write(db, backend, "outbox", check)
        with pytest.raises(refused):
            await Comments(failing).add(author.id, slug, NewComment(body="never"))
        assert followed == []  # no kick, no wake-up: nothing committed
        assert await row_count(app, "comments") == 0
        await assert_nothing_sent(app, sink)

    async def test_the_response_does_not_wait_for_a_hanging_smtp_server(
        self, client: httpx.AsyncClient, app: FastAPI, sink: SmtpSink
    ) -> None:
        await run_sync(sink.stop)
        await run_sync(sink.start, "stall")  # accepts, stores, never answers
        alice = await register(client, "alice")
        bob = await register(client, "bob")
        slug = (await create_article(client, alice))["slug"]
        async with asyncio.timeout(5):  # a generous bound; the point is it returns at all
            response = await client.post(
                f"/api/articles/{slug}/comments",
                json={"comment": {"body": "hi"}},
                headers=bob.headers,
            )
        assert response.status_code == 200
        await arrived(sink, 1)  # delivery started, and hangs, in the background
        rows = await outbox_rows(app)
        assert [r.status for r in rows] == ["sending"]


async def _title(client: httpx.AsyncClient, slug: str) -> str:
    title: str = (await client.get(f"/api/articles/{slug}")).json()["article"]["title"]
    return title


class TestRetries:
    @pytest.fixture
    def settings(self, database_url: str, sink: SmtpSink) -> Settings:
        sink.stop()  # nothing listens: every attempt is refused
        return make_settings(
            database_url,
            smtp_url=sink.url,
            outbox_in_process=False,
            notify_max_attempts=3,
            notify_backoff_base_s=0.01,
            notify_backoff_max_s=0.05,
            smtp_timeout_s=2,
        )

    async def _comment(self, client: httpx.AsyncClient) -> tuple[Account, Account]:
        alice = await register(client, "alice")
        bob = await register(client, "bob")
        slug = (await create_article(client, alice))["slug"]
        await add_comment(client, bob, slug)
        return alice, bob

    async def test_refused_then_delivered_when_the_server_returns(
        self, client: httpx.AsyncClient, app: FastAPI, sink: SmtpSink
    ) -> None:
        await self._comment(client)
        outbox = wired(app, Outbox)
        assert await outbox.drain_once() == 1
        (row,) = await outbox_rows(app)
        assert (row.status, row.attempts) == ("pending", 1)
        assert "Connect" in (row.last_error or "") or "refused" in (row.last_error or "").lower()
        await run_sync(sink.start)
        await asyncio.sleep(0.06)  # past the backoff
        await outbox.drain()
        (row,) = await outbox_rows(app)
        assert (row.status, row.attempts) == ("sent", 2)
        assert len(await run_sync(sink.messages)) == 1

    async def test_dead_lettered_after_the_attempt_limit_and_retried_on_request(
        self, client: httpx.AsyncClient, app: FastAPI, sink: SmtpSink
    ) -> None:
        await self._comment(client)
        outbox = wired(app, Outbox)
        for _ in range(3):
            await outbox.drain_once()
            await asyncio.sleep(0.06)
        (row,) = await outbox_rows(app)
        assert (row.status, row.attempts) == ("dead", 3)
        assert await outbox.drain_once() == 0  # dead letters are left alone
        metrics = (await client.get("/metrics")).text
        assert 'asyncpress_outbox_messages{status="dead"} 1' in metrics
        assert "asyncpress_outbox_failed_attempts 3" in metrics


class TestKick:
    @pytest.fixture
    def settings(self, database_url: str, sink: SmtpSink) -> Settings:
        # The sweep would not run for an hour: only the kick can deliver.
        return make_settings(
            database_url, smtp_url=sink.url, outbox_in_process=True, outbox_sweep_s=3600
        )

    async def test_the_kick_after_the_response_delivers_without_the_sweep(
        self, client: httpx.AsyncClient, app: FastAPI, sink: SmtpSink
    ) -> None:
        alice = await register(client, "alice")
        bob = await register(client, "bob")
        slug = (await create_article(client, alice))["slug"]
        # Let the sweep's first pass (at start-up) finish; from here it sleeps.
        await asyncio.sleep(0.2)
        await add_comment(client, bob, slug)
        (mail,) = await arrived(sink, 1, within_s=5)
        assert mail["To"] == alice.email
        # The outcome is recorded in a transaction of its own after the send:
        # the row may still say "sending" when the message lands.
        assert await statuses_become(app, ["sent"], within_s=5)
