"""Concurrent writers, all through the real app at once.

These are the races the issue names for PostgreSQL; they run on SQLite too,
where write transactions queue on the database lock (BEGIN IMMEDIATE).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import asyncmy
import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from servers.mariadb import asyncmy_args
from sqlalchemy import insert, select, update

from asyncpress.articles.slugs import write_retrying_slug
from asyncpress.core.uow import Database, UnitOfWork
from asyncpress.events import journal
from asyncpress.tags.models import Tag
from tests.factories import create_article, register
from tests.support.app import row_count, wired
from tests.support.locks import dsn, mariadb_lock_waits, waiting_backends


class TestConcurrentWrites:
    async def test_fifty_concurrent_favorites_count_fifty(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        author = await register(client)
        slug = (await create_article(client, author))["slug"]
        fans = [await register(client) for _ in range(50)]
        responses = await asyncio.gather(
            *(client.post(f"/api/articles/{slug}/favorite", headers=f.headers) for f in fans)
        )
        assert [r.status_code for r in responses] == [200] * 50
        article = (await client.get(f"/api/articles/{slug}")).json()["article"]
        assert article["favoritesCount"] == 50
        assert await row_count(app, "favorites") == 50

    async def test_twenty_concurrent_registrations_of_one_name_make_one_account(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        async def attempt(n: int) -> httpx.Response:
            user = {"username": "popular", "email": f"p{n}@example.com", "password": "password1"}
            return await client.post("/api/users", json={"user": user})

        responses = await asyncio.gather(*(attempt(n) for n in range(20)))
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [201] + [422] * 19
        for response in responses:
            if response.status_code == 422:
                assert response.json() == {"errors": {"username": ["has already been taken"]}}
        assert await row_count(app, "users") == 1

    async def test_same_title_at_once_gets_distinct_slugs(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        alice = await register(client)
        bob = await register(client)
        created = await asyncio.gather(
            create_article(client, alice, title="Breaking News"),
            create_article(client, bob, title="Breaking News"),
            create_article(client, alice, title="Breaking News"),
        )
        slugs = sorted(a["slug"] for a in created)
        # One gets the plain slug; a writer that loses a race takes a random suffix.
        assert len(set(slugs)) == 3
        assert slugs[0] == "breaking-news"
        assert all(s.startswith("breaking-news-") for s in slugs[1:])
        assert await row_count(app, "articles") == 3

    async def test_many_creates_of_one_title_all_succeed(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        authors = [await register(client) for _ in range(4)]
        responses = await asyncio.gather(
            *(
                client.post(
                    "/api/articles",
                    json={"article": {"title": "Same", "description": "d", "body": "b"}},
                    headers=authors[n % 4].headers,
                )
                for n in range(40)
            )
        )
        assert [r.status_code for r in responses] == [201] * 40
        assert len({r.json()["article"]["slug"] for r in responses}) == 40
        assert await row_count(app, "articles") == 40

    async def test_many_renames_to_one_title_all_succeed(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        alice = await register(client)
        slugs = [(await create_article(client, alice))["slug"] for _ in range(23)]
        responses = await asyncio.gather(
            *(
                client.put(
                    f"/api/articles/{slug}",
                    json={"article": {"title": "One Title"}},
                    headers=alice.headers,
                )
                for slug in slugs
            )
        )
        assert [r.status_code for r in responses] == [200] * 23
        renamed = {r.json()["article"]["slug"] for r in responses}
        assert len(renamed) == 23
        assert all(s.startswith("one-title") for s in renamed)


async def test_an_event_id_is_not_visible_before_a_lower_one_commits(app: FastAPI) -> None:
    """Ids are taken in commit order (events.journal): while one write holds
    an event id uncommitted, another write's event waits, so a reader that
    has seen id N never finds a lower id committed later (it would skip it
    for good).
    """
    db = wired(app, Database)
    second_done = asyncio.Event()

    async def second() -> None:
        async with db.write() as uow:
            await journal.append(uow, "test.second", {}, ["global"])
            await uow.commit()
        second_done.set()

    async with db.write() as first:
        await journal.append(first, "test.first", {}, ["global"])
        other = asyncio.create_task(second())
        await asyncio.sleep(0.5)
        # The second write waits on the first: its id would jump the queue.
        assert not second_done.is_set()
        await first.commit()
    await other
    async with db.sessionmaker() as session:
        logged = await journal.after(session, 0, 10)
    assert [e.type for e in logged] == ["test.first", "test.second"]


async def _while_deleting(
    database_url: str, slug: str, request: Callable[[], Coroutine[Any, Any, httpx.Response]]
) -> httpx.Response:
    """Send ``request`` while another transaction has deleted the article but
    not committed; commit once the request waits on the article's row."""
    if database_url.startswith("mysql"):
        return await _while_deleting_on_mariadb(database_url, slug, request)
    holder = await asyncpg.connect(dsn(database_url))
    try:
        transaction = holder.transaction()
        await transaction.start()
        await holder.execute("DELETE FROM articles WHERE slug = $1", slug)
        writing = asyncio.create_task(request())
        assert await waiting_backends(holder)
        await transaction.commit()
        return await writing
    finally:
        await holder.close()


async def _while_deleting_on_mariadb(
    database_url: str, slug: str, request: Callable[[], Coroutine[Any, Any, httpx.Response]]
) -> httpx.Response:
    holder = await asyncmy.connect(**asyncmy_args(database_url), autocommit=False)
    try:
        async with holder.cursor() as cursor:
            await cursor.execute("DELETE FROM articles WHERE slug = %s", (slug,))
        writing = asyncio.create_task(request())
        assert await mariadb_lock_waits(holder)
        await holder.commit()
        return await writing
    finally:
        holder.close()


@pytest.mark.servers_only
@pytest.mark.parametrize("write", ["favorite", "comment"])
async def test_a_write_on_an_article_deleted_under_it_is_404(
    client: httpx.AsyncClient, database_url: str, write: str
) -> None:
    """The article is read, then deleted by another client before the write's
    row refers to it: the reference fails, and that is a 404, not a 500."""
    author, reader = await register(client), await register(client)
    slug = (await create_article(client, author))["slug"]
    path = f"/api/articles/{slug}/{'favorite' if write == 'favorite' else 'comments'}"
    body = None if write == "favorite" else {"comment": {"body": "late"}}
    # Deleted but not committed: the write still reads the article, then
    # waits on the row when its own row refers to it.
    response = await _while_deleting(
        database_url, slug, lambda: client.post(path, json=body, headers=reader.headers)
    )
    assert response.status_code == 404, response.text
    assert response.json() == {"errors": {"article": ["not found"]}}


@pytest.mark.servers_only
@pytest.mark.parametrize("method", ["PUT", "DELETE"])
async def test_an_edit_or_delete_of_an_article_deleted_under_it_is_404(
    client: httpx.AsyncClient, database_url: str, method: str
) -> None:
    """The author edits (or deletes) an article another of their requests is
    deleting: the write waits for that delete and then finds nothing, a 404
    (an edit updated no row, a 500, and a second delete published a second
    ``article.deleted``)."""
    author = await register(client)
    slug = (await create_article(client, author))["slug"]
    body = {"article": {"title": "Later", "tagList": ["late"]}} if method == "PUT" else None
    response = await _while_deleting(
        database_url,
        slug,
        lambda: client.request(method, f"/api/articles/{slug}", json=body, headers=author.headers),
    )
    assert response.status_code == 404, response.text
    assert response.json() == {"errors": {"article": ["not found"]}}


@pytest.mark.mariadb_only
async def test_a_deadlock_victim_among_article_writes_is_run_again_once(
    app: FastAPI, database_url: str, backend: str
) -> None:
    """Creates, renames and imports (write_retrying_slug) run again once when
    MySQL picks them as a deadlock victim, with the same slug pick.

    A real deadlock: another transaction holds tag "b" and twenty more, this
    write takes "a" and waits for "b", then the other asks for "a". InnoDB
    rolls back the lighter transaction, this write's.
    """
    assert backend == "mariadb"
    db = wired(app, Database)
    async with db.write() as uow:
        names = ["a", "b", *(f"filler{n}" for n in range(20))]
        await uow.session.execute(insert(Tag), [{"name": name} for name in names])
        await uow.commit()

    def bump(name: str) -> Any:
        return update(Tag).where(Tag.name == name).values(uses=Tag.uses + 1)

    other = await asyncmy.connect(**asyncmy_args(database_url), autocommit=False)
    cursor = other.cursor()
    # As the app's connections: at REPEATABLE READ the scan would lock "a" too.
    await cursor.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
    await cursor.execute("UPDATE tags SET uses = uses + 1 WHERE name LIKE 'filler%%' OR name = 'b'")
    wants_a: asyncio.Task[Any] | None = None
    picks: list[bool] = []

    async def write(uow: UnitOfWork, contended: bool) -> str:
        nonlocal wants_a
        picks.append(contended)
        if len(picks) == 2:  # the victim's second run: the other finishes first
            assert wants_a is not None
            await wants_a
            await other.commit()
        await uow.session.execute(bump("a"))
        if len(picks) == 1:
            takes_b = asyncio.create_task(uow.session.execute(bump("b")))
            assert await mariadb_lock_waits(other)
            wants_a = asyncio.create_task(
                cursor.execute("UPDATE tags SET uses = uses + 1 WHERE name = 'a'")
            )
            await takes_b
        else:
            await uow.session.execute(bump("b"))
        await uow.commit()
        return "written"

    try:
        assert await write_retrying_slug(db, write) == "written"
    finally:
        other.close()
    assert picks == [False, False]
    async with db.sessionmaker() as session:
        uses = dict((await session.execute(select(Tag.name, Tag.uses))).all())
    assert (uses["a"], uses["b"]) == (2, 2)
