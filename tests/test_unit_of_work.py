"""A unit of work: one commit, and its follow-ups only after that commit succeeded."""

from __future__ import annotations

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import bindparam, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from asyncpress.articles import repository as articles
from asyncpress.articles.models import Article
from asyncpress.core.db.bulk import table_of
from asyncpress.core.uow import Database, FollowUps
from asyncpress.events import journal
from asyncpress.fast.direct import DirectConnection
from asyncpress.fast.rows import Prepared
from asyncpress.tags.models import Tag
from asyncpress.users.models import User
from tests.factories import create_article, register
from tests.support.app import row_count, wired


class Recorded:
    """An AfterCommit that keeps what it was asked to do."""

    def __init__(self) -> None:
        self.runs: list[FollowUps] = []

    async def run(self, follow_ups: FollowUps) -> None:
        self.runs.append(follow_ups)


@pytest.fixture
def recorded(app: FastAPI) -> tuple[Database, Recorded]:
    db = wired(app, Database)
    after = Recorded()
    return Database(db.engine, db.sessionmaker, after), after


async def test_follow_ups_run_once_after_the_commit(recorded: tuple[Database, Recorded]) -> None:
    db, after = recorded
    async with db.write() as uow:
        uow.session.add(Tag(name="kept"))
        uow.retire("a", "b")
        uow.retire("a")
        uow.wake_streams()
        uow.kick_outbox()
        uow.preview_links_in("see https://example.com/")
        assert after.runs == []  # nothing before the commit
        await uow.commit()
    assert after.runs == [
        FollowUps(
            retire={"a", "b"},
            wake_streams=True,
            kick_outbox=True,
            preview=["see https://example.com/"],
        )
    ]
    async with db.session() as session:
        assert await session.scalar(select(Tag.name).where(Tag.name == "kept")) == "kept"


async def test_a_write_that_raises_commits_nothing_and_follows_up_nothing(
    app: FastAPI, recorded: tuple[Database, Recorded]
) -> None:
    db, after = recorded

    class Refused(Exception):
        pass

    async def refused_write() -> None:
        async with db.write() as uow:
            uow.session.add(Tag(name="lost"))
            uow.retire("a")
            uow.wake_streams()
            await uow.session.flush()
            raise Refused

    with pytest.raises(Refused):
        await refused_write()
    assert after.runs == []
    assert await row_count(app, "tags") == 0


async def test_a_driver_direct_write_first_in_a_unit_rolls_back_with_it(
    app: FastAPI, client: httpx.AsyncClient, recorded: tuple[Database, Recorded]
) -> None:
    """An event sent driver-direct (fast.rows) as the unit's first statement is
    inside its transaction: a rollback takes it back, and the favorite after it."""
    db, after = recorded
    author, reader = await register(client), await register(client)
    slug = (await create_article(client, author))["slug"]
    async with db.session() as session:
        article_id = await session.scalar(select(Article.id).where(Article.slug == slug))
        reader_id = await session.scalar(select(User.id).where(User.username == reader.username))
    assert article_id is not None
    assert reader_id is not None

    class Refused(Exception):
        pass

    async def refused_write() -> None:
        async with db.write() as uow:
            await journal.append(uow, "test.lost", {}, ["global"])
            assert await articles.move_favorite(uow.session, reader_id, article_id, favorite=True)
            raise Refused

    with pytest.raises(Refused):
        await refused_write()
    assert after.runs == []
    assert await row_count(app, "favorites") == 0
    async with db.session() as session:
        assert [e.type for e in await journal.after(session, 0, 100) if e.type == "test.lost"] == []
        count = await session.scalar(
            select(Article.favorites_count).where(Article.id == article_id)
        )
    assert count == 0


async def test_a_commit_that_fails_follows_up_nothing(
    app: FastAPI, recorded: tuple[Database, Recorded]
) -> None:
    db, after = recorded
    async with db.write() as uow:
        uow.session.add(Tag(name="taken"))
        await uow.commit()
    after.runs.clear()

    async def clashing_write() -> None:
        async with db.write() as uow:
            uow.session.add(Tag(name="taken"))  # unique: the commit (flush) fails
            uow.kick_outbox()
            await uow.commit()

    with pytest.raises(IntegrityError):
        await clashing_write()
    assert after.runs == []
    assert await row_count(app, "tags") == 1


async def test_a_rollback_drops_what_was_declared(recorded: tuple[Database, Recorded]) -> None:
    db, after = recorded
    async with db.write() as uow:
        uow.retire("dropped")
        await uow.rollback()
        uow.retire("kept")
        await uow.commit()
    assert after.runs == [FollowUps(retire={"kept"})]


async def test_a_unit_with_nothing_declared_asks_nothing(
    recorded: tuple[Database, Recorded],
) -> None:
    db, after = recorded
    async with db.write() as uow:
        await uow.commit()
    assert after.runs == []


async def test_an_api_write_retires_what_its_readers_cached(
    client: httpx.AsyncClient,
) -> None:
    # The whole path: a write through the API declares the keys, the app's
    # AfterCommit deletes them, the next anonymous read sees the write.
    alice = await register(client, "alice")
    article = await create_article(client, alice, tagList=["first"])
    assert (await client.get("/api/tags")).json()["tags"] == ["first"]
    cached = await client.get(f"/api/articles/{article['slug']}")
    assert cached.json()["article"]["tagList"] == ["first"]
    await client.put(
        f"/api/articles/{article['slug']}",
        json={"article": {"tagList": ["second"]}},
        headers=alice.headers,
    )
    assert (await client.get("/api/tags")).json()["tags"] == ["second"]
    fresh = await client.get(f"/api/articles/{article['slug']}")
    assert fresh.json()["article"]["tagList"] == ["second"]


_ALONE = Prepared(
    insert(table_of(Tag)).values(name=bindparam("name")).returning(table_of(Tag).c.id)
)


async def _tag_exists(db: Database, name: str) -> bool:
    async with db.session() as session:
        return await session.scalar(select(Tag.id).where(Tag.name == name)) is not None


@pytest.mark.postgres_only
async def test_one_statement_commits_as_it_ends_and_follows_up_on_commit(
    recorded: tuple[Database, Recorded], backend: str
) -> None:
    """A write in one statement (PostgreSQL's favorites) is a transaction of its
    own: committed when it returns, even after a read that began a transaction
    on the same connection; its follow-ups wait for ``commit``."""
    db, after = recorded
    async with db.write_at_once() as work:
        assert isinstance(work.connection, AsyncConnection)  # no direct pool (``recorded``)
        await work.connection.execute(select(Tag.id).limit(1))  # SQLAlchemy begins here
        assert work.connection.in_transaction()
        work.retire("tags")
        assert (await work.send(_ALONE, {"name": "alone", "uses": 0}))[0]["id"] > 0
        assert await _tag_exists(db, "alone")  # another connection sees it: committed
        assert after.runs == []
        await work.commit()
    assert after.runs == [FollowUps(retire={"tags"})]


@pytest.mark.postgres_only
async def test_one_statement_on_the_direct_pool_commits_and_follows_up(
    app: FastAPI, backend: str
) -> None:
    db = wired(app, Database)
    after = Recorded()
    pooled = Database(db.engine, db.sessionmaker, after, db.direct)
    assert pooled.direct is not None
    async with pooled.write_at_once() as work:
        assert isinstance(work.connection, DirectConnection)
        work.retire("tags")
        assert (await work.send(_ALONE, {"name": "pooled", "uses": 0}))[0]["id"] > 0
        assert await _tag_exists(db, "pooled")  # committed as it ended
        assert after.runs == []
        await work.commit()
    assert after.runs == [FollowUps(retire={"tags"})]
    assert pooled.direct.in_use == 0
    with pytest.raises(RuntimeError, match="commits alone"):
        async with pooled.reading() as reader:
            await _ALONE.rows(reader, {"name": "never", "uses": 0})
    assert not await _tag_exists(db, "never")


@pytest.mark.postgres_only
async def test_one_statement_is_followed_up_even_if_the_block_then_fails(
    recorded: tuple[Database, Recorded], backend: str
) -> None:
    db, after = recorded

    class Late(Exception):
        pass

    async def fails_after(writing: bool) -> None:
        async with db.write_at_once() as work:
            work.retire("tags")
            if writing:
                await work.send(_ALONE, {"name": "late", "uses": 0})
            raise Late

    with pytest.raises(Late):
        await fails_after(writing=True)
    assert await _tag_exists(db, "late")
    assert after.runs == [FollowUps(retire={"tags"})]  # readers must not keep the old value

    with pytest.raises(Late):
        await fails_after(writing=False)  # nothing written: nothing to follow up
    assert after.runs == [FollowUps(retire={"tags"})]


@pytest.mark.postgres_only
async def test_one_statement_that_fails_writes_nothing_and_follows_up_nothing(
    recorded: tuple[Database, Recorded], backend: str
) -> None:
    db, after = recorded
    async with db.write_at_once() as work:
        await work.send(_ALONE, {"name": "twice", "uses": 0})
        await work.commit()

    async def again() -> None:
        async with db.write_at_once() as work:
            work.retire("tags")
            await work.send(_ALONE, {"name": "twice", "uses": 0})  # the tag's name is unique

    with pytest.raises(asyncpg.UniqueViolationError):  # driver-direct: asyncpg's own error
        await again()
    assert after.runs == []
