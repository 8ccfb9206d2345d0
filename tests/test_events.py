"""Live events against a served app (``asyncpress serve`` on 127.0.0.1), both backends."""

from __future__ import annotations

import asyncio
import itertools
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from anyio.to_thread import run_sync
from servers.postgres import PostgresServer, empty_database
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from websockets.exceptions import ConnectionClosed

from asyncpress.core.migrate import upgrade
from tests.factories import Account, add_comment, create_article, register
from tests.support.app import selected_backends
from tests.support.live import Served, socket, sse


# One served app per backend and delivery path for the whole module: starting
# a process is most of a test's cost here. Tests share its database, so each
# names its accounts and articles with its own suffix (the ``key`` fixture).
# Each app has a database of its own, which is not the database the
# in-process tests empty before each test.
@pytest.fixture(scope="session")
def live_postgres_urls(postgres_server: PostgresServer) -> dict[str, str]:
    urls = {}
    for path in ("direct", "queued"):
        postgres_server.psql(f"CREATE DATABASE asyncpress_live_{path}")
        urls[path] = postgres_server.url(f"asyncpress_live_{path}")
        upgrade(urls[path])
    return urls


@pytest.fixture(scope="module", params=selected_backends())
def live_backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.param
    return backend


def _database(request: pytest.FixtureRequest, backend: str, path: str, folder: Path) -> str:
    if backend == "postgresql":
        url: str = request.getfixturevalue("live_postgres_urls")[path]
        asyncio.run(empty_database(url))
        return url
    shutil.copyfile(request.getfixturevalue("sqlite_template"), folder / "asyncpress.db")
    return f"sqlite+aiosqlite:///{folder / 'asyncpress.db'}"


def _serve(request: pytest.FixtureRequest, backend: str, path: str) -> Iterator[Served]:
    folder: Path = request.getfixturevalue("tmp_path_factory").mktemp(path)
    app = Served(
        _database(request, backend, path, folder),
        folder,
        "app",
        EVENTS_HEARTBEAT_S="0.5",
        EVENTS_DIRECT_WRITES=str(path == "direct").lower(),
    )
    yield app
    app.process.stop()


@pytest.fixture(scope="module")
def direct_app(request: pytest.FixtureRequest, live_backend: str) -> Iterator[Served]:
    yield from _serve(request, live_backend, "direct")


@pytest.fixture(scope="module")
def queued_app(request: pytest.FixtureRequest, live_backend: str) -> Iterator[Served]:
    yield from _serve(request, live_backend, "queued")


@pytest.fixture
def served(request: pytest.FixtureRequest, live_backend: str) -> Served:
    """The app; ``indirect`` param "queued" turns direct socket writes off."""
    path = getattr(request, "param", "direct")
    app: Served = request.getfixturevalue(f"{path}_app")
    return app


_keys = itertools.count(1)


@pytest.fixture
def key() -> str:
    """This test's suffix for the names and titles it writes to the shared database."""
    return f"k{next(_keys)}"


def _check_delivery_path(served: Served) -> None:
    """Events went straight to idle sockets, or (turned off) all through the queues."""
    counts = served.metric("asyncpress_events_process_total")
    delivered = counts['asyncpress_events_process_total{what="delivered"}']
    direct = counts['asyncpress_events_process_total{what="direct"}']
    assert delivered > 0
    if served.env["EVENTS_DIRECT_WRITES"] == "true":
        assert direct > 0
    else:
        assert direct == 0


@pytest.fixture
async def http(served: Served) -> AsyncIterator[httpx.AsyncClient]:
    async with served.client() as client:
        yield client


async def _ticket(http: httpx.AsyncClient, account: Account) -> str:
    response = await http.post("/api/events/ticket", headers=account.headers)
    assert response.status_code == 201, response.text
    ticket: str = response.json()["ticket"]
    return ticket


async def _sql(database_url: str, statement: str) -> None:
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


# Both ways to a subscriber: written straight to an idle socket (asyncpress.fast.wire)
# and through the stream's queue and ASGI.
@pytest.mark.parametrize("served", ["direct", "queued"], indirect=True)
class TestDelivery:
    async def test_each_write_reaches_its_channels_in_rest_shapes(
        self, served: Served, http: httpx.AsyncClient, key: str
    ) -> None:
        ann, ben, cat = [await register(http, name + key) for name in ("ann", "ben", "cat")]
        ann_ticket = await _ticket(http, ann)
        async with (
            socket(f"{served.ws_base}/api/ws") as public,
            socket(f"{served.ws_base}/api/ws?ticket={ann_ticket}") as ann_ws,
            socket(
                f"{served.ws_base}/api/ws",
                additional_headers={"Authorization": f"Token {ben.token}"},
            ) as ben_ws,
        ):
            await public.subscribe(["global"])
            await ann_ws.subscribe(["user"])
            await ben_ws.subscribe(["feed"])

            await http.post(f"/api/profiles/{ann.username}/follow", headers=ben.headers)
            followed = await ann_ws.event()
            assert followed["event"] == "profile.followed"
            assert followed["data"]["profile"] == {
                "username": ben.username,
                "bio": "",
                "image": None,
                "following": False,
            }

            article = await create_article(http, ann, title=f"Live news {key}", tagList=["b", "a"])
            created = await public.event()
            assert created["event"] == "article.created"
            assert created["id"] > followed["id"]
            assert created["time"].endswith("Z")
            shown = created["data"]["article"]
            assert "body" not in shown  # the list endpoint's shape
            assert {k: shown[k] for k in ("slug", "tagList", "favorited", "favoritesCount")} == {
                "slug": f"live-news-{key}",
                "tagList": ["a", "b"],
                "favorited": False,
                "favoritesCount": 0,
            }
            assert shown["author"]["username"] == ann.username
            fed = await ben_ws.event()
            assert fed["id"] == created["id"]

            # cat is not followed by ben: the public channel hears it, ben's feed does not.
            await create_article(http, cat, title=f"Unfollowed {key}")
            assert (await public.event())["data"]["article"]["slug"] == f"unfollowed-{key}"

            # A refused write publishes nothing.
            refused = await http.put(
                f"/api/articles/{article['slug']}",
                json={"article": {"title": "Hijacked"}},
                headers=cat.headers,
            )
            assert refused.status_code == 403

            async with sse(http, f"/api/events?channels=article:{article['slug']}") as watch:
                await asyncio.sleep(0.2)
                comment = await add_comment(http, ben, article["slug"], "First!")
                await add_comment(http, ann, article["slug"], "Thanks")  # ann's own: not in `user`
                on_article = await watch.take(2)
                assert [e.event for e in on_article] == ["comment.created"] * 2
                assert on_article[0].data["data"] == {
                    "slug": f"live-news-{key}",
                    "comment": {**comment, "author": {**comment["author"], "following": False}},
                }
                assert on_article[0].data["id"] == int(on_article[0].id or 0)

                noticed = await ann_ws.event()
                assert noticed["event"] == "comment.created"
                assert noticed["data"]["comment"]["body"] == "First!"

                await http.post(f"/api/articles/{article['slug']}/favorite", headers=ben.headers)
                await http.post(f"/api/articles/{article['slug']}/favorite", headers=ben.headers)
                favorited = await public.event()
                assert favorited["event"] == "article.favorited"
                assert favorited["data"]["article"]["favoritesCount"] == 1
                assert favorited["data"]["profile"]["username"] == ben.username
                assert (await ann_ws.event())["id"] == favorited["id"]  # the user channel too

                await http.put(
                    f"/api/articles/{article['slug']}",
                    json={"article": {"title": f"Renamed {key}"}},
                    headers=ann.headers,
                )
                renamed = f"renamed-{key}"
                updated = await public.event()
                assert updated["event"] == "article.updated"
                assert updated["data"]["article"]["slug"] == renamed

                await http.delete(
                    f"/api/articles/{renamed}/comments/{comment['id']}", headers=ben.headers
                )
                await http.delete(f"/api/articles/{renamed}", headers=ann.headers)
                deleted = await public.event()
                assert deleted["event"] == "article.deleted"
                assert deleted["data"]["article"]["slug"] == renamed

                # The old slug's watchers heard of the favorite (twice posted, once sent),
                # the rename, and nothing after it (the new slug is another channel).
                rest = await watch.take(2)
                assert [e.event for e in rest] == ["article.favorited", "article.updated"]

            # ann's user channel: only what others did to her (favorite above was ben's).
            await http.post(f"/api/profiles/{ann.username}/follow", headers=cat.headers)
            assert (await ann_ws.event())["data"]["profile"]["username"] == cat.username
            # ben's feed never saw cat's article.
            second = await create_article(http, ann, title=f"Second {key}")
            assert (await ben_ws.event())["data"]["article"]["slug"] == second["slug"]
        _check_delivery_path(served)

    async def test_sse_resumes_after_last_event_id_exactly(
        self, served: Served, http: httpx.AsyncClient, key: str
    ) -> None:
        ann = await register(http, f"ann{key}")
        async with sse(http, "/api/events?channels=global") as first:
            await asyncio.sleep(0.2)
            for n in range(3):
                await create_article(http, ann, title=f"Seen {n}")
            seen = await first.take(3)
        last_seen = seen[-1].id
        assert last_seen is not None
        missed = [(await create_article(http, ann, title=f"Missed {n}"))["slug"] for n in range(4)]
        other = await create_article(http, ann, title="Elsewhere")
        await add_comment(http, ann, other["slug"])  # not on `global`: never replayed here

        async with sse(http, "/api/events?channels=global", {"Last-Event-ID": last_seen}) as again:
            replayed = await again.take(5)
            again_live = await create_article(http, ann, title=f"Live again {key}")
            live = await again.next()
        slugs = [e.data["data"]["article"]["slug"] for e in replayed]
        assert slugs == [*missed, other["slug"]]
        ids = [int(e.id or 0) for e in [*replayed, live]]
        assert ids == sorted(set(ids))
        assert ids[0] > int(last_seen)
        assert live.data["data"]["article"]["slug"] == again_live["slug"]

        # The query parameter does the same (a new EventSource after a ticket).
        url = f"/api/events?channels=global&lastEventId={int(last_seen) + 3}"
        async with sse(http, url) as by_query:
            tail = await by_query.take(3)
        assert [e.data["data"]["article"]["slug"] for e in tail] == [
            missed[3],
            other["slug"],
            again_live["slug"],
        ]

        # Older than the log keeps (pruned away): a reset, then live events.
        await _sql(served.database_url, f"DELETE FROM events WHERE id <= {int(last_seen) + 1}")  # noqa: S608
        async with sse(http, "/api/events?channels=global", {"Last-Event-ID": "1"}) as stale:
            reset = await stale.next()
            assert reset.event == "reset"
            after_reset = await create_article(http, ann, title=f"After reset {key}")
            after = await stale.next()
        assert after.data["data"]["article"]["slug"] == after_reset["slug"]
        assert int(after.id or 0) > int(reset.id or 0)

        # An id from the future (another database?) is a reset too.
        async with sse(http, "/api/events?channels=global&lastEventId=99999") as future:
            assert (await future.next()).event == "reset"
        _check_delivery_path(served)

    async def test_ws_subscribe_replays_after_last_event_id(
        self, served: Served, http: httpx.AsyncClient, key: str
    ) -> None:
        ann = await register(http, f"ann{key}")
        first = await create_article(http, ann, title="One")
        async with socket(f"{served.ws_base}/api/ws") as ws:
            await ws.subscribe([f"article:{first['slug']}"])
            await add_comment(http, ann, first["slug"], "c1")
            # A subscription starts after what was committed before it: the
            # article's own creation is not sent.
            seen = await ws.event()
            assert seen["event"] == "comment.created"
            base_id = seen["id"]
        for n in (2, 3):
            await add_comment(http, ann, first["slug"], f"c{n}")
        two = await create_article(http, ann, title="Two")
        async with socket(f"{served.ws_base}/api/ws") as ws:
            await ws.subscribe([f"article:{first['slug']}"], lastEventId=base_id)
            bodies = [(await ws.event())["data"]["comment"]["body"] for _ in range(2)]
            assert bodies == ["c2", "c3"]
            # Adding `global` later with the same id replays what only `global` carried.
            await ws.subscribe(["global"], lastEventId=base_id)
            extra = await ws.event()
            assert extra["event"] == "article.created"
            assert extra["data"]["article"]["slug"] == two["slug"]
            await ws.send({"type": "ping"})
            assert await ws.recv() == {"type": "pong"}  # nothing else was queued
        _check_delivery_path(served)


class TestProtocolErrors:
    async def test_websocket_errors_keep_the_connection_open(
        self, served: Served, http: httpx.AsyncClient, key: str
    ) -> None:
        ann = await register(http, f"ann{key}")
        ben = await register(http, f"ben{key}")
        async with socket(f"{served.ws_base}/api/ws") as ws:
            cases: list[tuple[Any, str]] = [
                ("{not json", "invalid JSON"),
                ([1, 2], "JSON object"),
                ({"type": "dance"}, "unknown message type"),
                ({"type": "subscribe", "channels": "global"}, "list of channel names"),
                ({"type": "subscribe", "channels": ["feed"]}, "authenticated"),
                ({"type": "subscribe", "channels": ["user"]}, "authenticated"),
                ({"type": "subscribe", "channels": ["news"]}, "not a channel"),
                ({"type": "subscribe", "channels": ["article:"]}, "not a valid article"),
                (
                    {"type": "subscribe", "channels": [f"article:a{n}" for n in range(51)]},
                    "at most 50",
                ),
                ({"type": "subscribe", "channels": ["global"], "lastEventId": "x"}, "lastEventId"),
                ({"type": "auth", "token": "not-a-jwt"}, "invalid or expired"),
            ]
            for message, expected in cases:
                await ws.send(message)
                reply = await ws.recv()
                assert reply["type"] == "error", (message, reply)
                assert expected in reply["message"], (message, reply)
                await ws.send({"type": "ping"})
                assert await ws.recv() == {"type": "pong"}

            # 50 is allowed; the limit counts what the connection already holds.
            held = await ws.subscribe([f"article:a{n}" for n in range(50)])
            assert len(held["channels"]) == 50
            await ws.send({"type": "subscribe", "channels": ["global"]})
            assert "at most 50" in (await ws.recv())["message"]
            await ws.send({"type": "unsubscribe", "channels": ["article:a0", "article:a1"]})
            assert len((await ws.recv())["channels"]) == 48

            await ws.send({"type": "auth", "token": ann.token})
            await ws.send({"type": "subscribe", "channels": [f"user:{ben.username}"]})
            assert "another user" in (await ws.recv())["message"]
            reply = await ws.subscribe([f"user:{ann.username}", "feed"])
            assert {f"user:{ann.username}", "feed"} <= set(reply["channels"])
            await ws.send({"type": "auth", "token": ann.token})
            assert "already authenticated" in (await ws.recv())["message"]

        async with socket(f"{served.ws_base}/api/ws") as ws:
            await ws.send({"type": "ping", "padding": "x" * 70_000})
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1009  # message too big

    async def test_websocket_compression_is_declined(self, served: Served) -> None:
        # The client offers permessage-deflate, as browsers do; WS_COMPRESSION is off.
        async with socket(f"{served.ws_base}/api/ws") as ws:
            offered = ws.connection.request.headers["Sec-WebSocket-Extensions"]  # type: ignore[union-attr]
            assert offered.startswith("permessage-deflate")
            assert "Sec-WebSocket-Extensions" not in ws.connection.response.headers  # type: ignore[union-attr]
            await ws.send({"type": "ping"})
            assert await ws.recv() == {"type": "pong"}

    async def test_a_bad_or_reused_ticket_closes_the_socket(
        self, served: Served, http: httpx.AsyncClient, key: str
    ) -> None:
        ann = await register(http, f"ann{key}")
        ticket = await _ticket(http, ann)
        async with socket(f"{served.ws_base}/api/ws?ticket={ticket}") as ws:
            await ws.subscribe(["user"])
        for url in (f"/api/ws?ticket={ticket}", "/api/ws?ticket=forged"):
            async with socket(f"{served.ws_base}{url}") as ws:
                error = await ws.recv()
                assert error["type"] == "error"
                assert "ticket" in error["message"]
                with pytest.raises(ConnectionClosed) as closed:
                    await ws.recv()
                assert closed.value.rcvd is not None
                assert closed.value.rcvd.code == 1008

    async def test_sse_refusals_use_the_error_envelope(
        self, served: Served, http: httpx.AsyncClient, key: str
    ) -> None:
        ann = await register(http, f"ann{key}")
        ben = await register(http, f"ben{key}")
        ticket = await _ticket(http, ann)
        many = ",".join(f"article:a{n}" for n in range(51))
        cases = [
            ("/api/events?channels=news", {}, 422),
            ("/api/events?channels=global,", {}, 422),
            ("/api/events?channels=feed", {}, 401),
            (f"/api/events?channels=user:{ben.username}", ann.headers, 403),
            (f"/api/events?channels={many}", {}, 422),
            ("/api/events?channels=global", {"Last-Event-ID": "abc"}, 422),
            ("/api/events?channels=global&lastEventId=-1", {}, 422),
            ("/api/events?channels=user&ticket=forged", {}, 401),
            ("/api/events", {}, 422),
        ]
        for url, headers, status in cases:
            response = await http.get(url, headers=headers)
            assert response.status_code == status, (url, response.text)
            errors = response.json()["errors"]
            assert all(isinstance(v, list) and v for v in errors.values()), errors

        async with sse(http, f"/api/events?channels=user,feed&ticket={ticket}") as stream:
            follower = await register(http)
            await http.post(f"/api/profiles/{ann.username}/follow", headers=follower.headers)
            assert (await stream.next()).event == "profile.followed"
        reused = await http.get(f"/api/events?channels=user&ticket={ticket}")
        assert reused.status_code == 401
        assert (await http.post("/api/events/ticket")).status_code == 401

        # Non-browser clients may authenticate with the header instead.
        async with sse(http, f"/api/events?channels=user:{ann.username}", ann.headers):
            pass

    async def test_heartbeats_while_idle_and_a_capped_lifetime(
        self, direct_app: Served, tmp_path: Path
    ) -> None:
        app = await run_sync(
            lambda: Served(
                direct_app.database_url,
                tmp_path,
                "short",
                EVENTS_HEARTBEAT_S="0.2",
                EVENTS_MAX_LIFETIME_S="1.5",
            )
        )
        try:
            async with app.client() as http, sse(http, "/api/events?channels=global") as stream:
                beat = await stream.next(skip_comments=False)
                assert beat.comment == "heartbeat"
                async with asyncio.timeout(5):
                    while (item := await stream.next()).event != "reconnect":
                        pass
                    assert item.data == {"reason": "connection lifetime reached"}
                    await stream.ended.wait()
        finally:
            await run_sync(app.process.stop)


async def test_the_stream_is_documented_as_server_sent_events(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    ok = spec["paths"]["/api/events"]["get"]["responses"]["200"]
    assert list(ok["content"]) == ["text/event-stream"]


def test_a_served_process_freezes_its_startup_and_reports_collections(served: Served) -> None:
    figures = served.metric("asyncpress_gc_")
    assert figures["asyncpress_gc_frozen_objects"] > 10_000  # modules, models, the app
    # freeze_startup ran one full collection, timed by the meter installed before it.
    assert figures['asyncpress_gc_collections_total{generation="2"}'] >= 1
    assert figures['asyncpress_gc_pause_seconds_max{generation="2"}'] > 0
    assert figures['asyncpress_gc_policy_total{what="freezes"}'] == 0  # no burst of streams yet
