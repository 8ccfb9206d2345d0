"""The direct pool (fast.direct): one-statement work on PostgreSQL, in order, bounded, healed."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from asyncpress.articles.repository import _slug_params, _slugs_and_actor
from asyncpress.core.config import Settings
from asyncpress.core.db.engine import create_engine, direct_pool
from asyncpress.core.db_faults import classify
from asyncpress.core.uow import Database
from asyncpress.fast.direct import DirectPool
from tests.factories import add_comment, create_article, register
from tests.support.app import make_settings, wired

pytestmark = pytest.mark.postgres_only


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(database_url)
    yield engine
    await engine.dispose()


def _pool(engine: AsyncEngine, size: int, patience_s: float = 5.0) -> DirectPool:
    settings = {"server_settings": {"application_name": "asyncpress-direct-pool-test"}}
    return DirectPool(engine, settings, size=size, patience_s=patience_s)


async def test_reads_wait_their_turn_in_order(engine: AsyncEngine) -> None:
    reads = _pool(engine, size=1)
    served: list[str] = []

    async def read(name: str) -> None:
        async with reads.connection() as connection:
            served.append(name)
            await connection.fetchval("SELECT 1")

    try:
        holder = reads.connection()
        await holder.__aenter__()
        waiters = [asyncio.create_task(read(name)) for name in ("first", "second")]
        await asyncio.sleep(0.05)  # both are waiting
        returned = asyncio.create_task(holder.__aexit__(None, None, None))
        await asyncio.sleep(0)  # the connection is on its way back
        # A newcomer that asks between the return and the first waiter's turn
        # (under load, a request whose turn on the loop came first): asyncpg's
        # own queue hands it the connection.
        newcomer = asyncio.create_task(read("newcomer"))
        await asyncio.gather(returned, newcomer, *waiters)
    finally:
        await reads.close()
    assert served == ["first", "second", "newcomer"]
    assert reads.in_use == 0


async def test_no_connection_in_time_is_a_503_and_frees_its_place(engine: AsyncEngine) -> None:
    reads = _pool(engine, size=1, patience_s=0.1)
    try:
        async with reads.connection():
            with pytest.raises(sa_exc.TimeoutError) as waited:
                async with reads.connection():
                    pass
        assert classify(waited.value) == 503
        async with reads.connection() as connection:  # the place it waited for is free
            assert await connection.fetchval("SELECT 2") == 2
    finally:
        await reads.close()
    assert reads.in_use == 0


async def test_a_cancelled_read_gives_its_connection_back(engine: AsyncEngine) -> None:
    reads = _pool(engine, size=1)
    try:

        async def slow() -> None:
            async with reads.connection() as connection:
                await connection.execute("SELECT pg_sleep(5)")

        task = asyncio.create_task(slow())
        await asyncio.sleep(0.2)  # the statement is running
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        async with asyncio.timeout(5), reads.connection() as connection:
            assert await connection.fetchval("SELECT 3") == 3
    finally:
        await reads.close()


async def test_a_connection_the_server_closed_is_replaced(engine: AsyncEngine) -> None:
    reads = _pool(engine, size=1)
    try:
        async with reads.connection() as connection:
            pid = await connection.fetchval("SELECT pg_backend_pid()")
        async with engine.connect() as killer:
            await killer.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)})")
        await asyncio.sleep(0.1)  # asyncpg reads the socket's end
        async with reads.connection() as connection:
            assert await connection.fetchval("SELECT pg_backend_pid()") != pid
            name = await connection.fetchval("SHOW application_name")
        assert name == "asyncpress-direct-pool-test"  # opened with the session settings
    finally:
        await reads.close()


async def test_closing_cuts_off_a_connection_still_in_use(engine: AsyncEngine) -> None:
    """A request's work left unwinding against a stalled database must not hold up shutdown."""
    reads = _pool(engine, size=1)
    holder = reads.connection()
    connection = await holder.__aenter__()
    pid = await connection.fetchval("SELECT pg_backend_pid()")
    loop = asyncio.get_running_loop()
    started = loop.time()
    await reads.close(grace_s=0.2)
    assert loop.time() - started < 2  # asyncpg's own close waits for it for ever
    alive = text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid")
    async with asyncio.timeout(5), engine.connect() as watcher:
        while (await watcher.execute(alive, {"pid": pid})).scalar_one():
            await watcher.rollback()  # a fresh snapshot of the activity view
            await asyncio.sleep(0.02)
    await holder.__aexit__(None, None, None)  # the work, unwinding later, still returns
    assert reads.in_use == 0


async def test_a_down_database_is_a_503_not_a_500(engine: AsyncEngine) -> None:
    closed = create_async_engine("postgresql+asyncpg://postgres:x@127.0.0.1:1/none?ssl=disable")
    reads = _pool(closed, size=1)
    try:
        with pytest.raises(ConnectionRefusedError) as refused:
            async with reads.connection():
                pass
        assert classify(refused.value) == 503
        assert reads.in_use == 0
    finally:
        await reads.close()
        await closed.dispose()


class TestOnTheApp:
    @pytest.fixture
    def settings(self, database_url: str) -> Settings:
        return make_settings(database_url, db_direct_pool_size=2)

    async def test_one_statement_reads_and_writes_take_no_connection_of_the_engine(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        await register(client, "reader")
        db = wired(app, Database)
        assert db.direct is not None
        checkouts: list[object] = []

        def checked_out(*args: object) -> None:
            checkouts.append(args)

        engine = db.engine.sync_engine
        event.listen(engine, "checkout", checked_out)
        try:
            response = await client.get("/api/profiles/reader")
        finally:
            event.remove(engine, "checkout", checked_out)
        assert response.status_code == 200
        assert response.json()["profile"]["username"] == "reader"
        assert checkouts == []
        # A write in one statement that commits alone: the same pool.
        follower = await register(client, "follower")
        event.listen(engine, "checkout", checked_out)
        try:
            followed = await client.post("/api/profiles/reader/follow", headers=follower.headers)
        finally:
            event.remove(engine, "checkout", checked_out)
        assert followed.json()["profile"]["following"] is True
        assert checkouts == []

    async def test_its_statements_are_planned_once_not_at_every_run(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        # PostgreSQL plans a prepared statement anew at each run while it
        # guesses that a plan for the values at hand is cheaper than one for
        # any values; for one article's read it guessed so every time, and
        # planning (0.3 ms) cost twice the read. The direct pool runs only
        # statements that one plan serves for all values: planned once.
        db = wired(app, Database)
        assert db.direct is not None
        people = [await register(client) for _ in range(3)]
        slugs = [(await create_article(client, people[n % 3]))["slug"] for n in range(4)]
        for n in range(12):
            reader, other, slug = people[n % 3], people[(n + 1) % 3], slugs[n % 4]
            assert (await client.get(f"/api/articles/{slug}", headers=reader.headers)).is_success
            await client.get(f"/api/articles/{slug}/comments", headers=reader.headers)
            await client.get(f"/api/profiles/{other.username}", headers=reader.headers)
            await client.post(f"/api/articles/{slug}/favorite", headers=reader.headers)
            await client.delete(f"/api/articles/{slug}/favorite", headers=reader.headers)
            await client.post(f"/api/profiles/{other.username}/follow", headers=reader.headers)
            await client.delete(f"/api/profiles/{other.username}/follow", headers=reader.headers)
            await add_comment(client, reader, slug)
            await create_article(client, reader, title="The same title")
        planned: dict[str, tuple[int, int]] = {}
        async with db.direct.connection() as first, db.direct.connection() as second:
            for connection in (first, second):
                for row in await connection.fetch(
                    "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements"
                ):
                    generic, custom = planned.get(row["statement"], (0, 0))
                    planned[row["statement"]] = (
                        generic + row["generic_plans"],
                        custom + row["custom_plans"],
                    )
        reads = [sql for sql in planned if "FROM articles JOIN users" in sql]
        assert reads, "the article's read ran on the direct pool"
        assert {sql: counts for sql, counts in planned.items() if counts[1]} == {}
        assert all(planned[sql][0] >= 12 for sql in reads)

    async def test_a_new_articles_slug_is_checked_from_the_index_in_that_one_plan(
        self, app: FastAPI
    ) -> None:
        # ``LIKE $1`` cannot use an index in a plan made before its pattern is
        # known; the slug check asks for the prefix as a range instead.
        db = wired(app, Database)
        assert db.direct is not None
        sql, order, _ = _slugs_and_actor()._postgresql(db.engine.dialect)
        values = {**_slug_params("a-title"), "actor": 1}
        async with db.direct.connection() as connection:
            # The plan for any values, whatever the pool's setting; an index
            # wherever one can serve.
            await connection.execute("SET plan_cache_mode = force_generic_plan")
            await connection.execute("SET enable_seqscan = off")
            try:
                await connection.execute(f"PREPARE slugs AS {sql}")
                # EXPLAIN takes no parameters: the values as literals (test data).
                listed = ", ".join(
                    str(v) if isinstance(v, int) else f"'{v}'" for v in (values[k] for k in order)
                )
                plan = await connection.fetch(f"EXPLAIN EXECUTE slugs({listed})")
            finally:
                await connection.execute("DEALLOCATE slugs")
                await connection.execute("RESET enable_seqscan")
                await connection.execute("RESET plan_cache_mode")
        lines = [row[0] for row in plan]
        shown = "\n".join(lines)
        assert "Seq Scan" not in shown, shown
        # Each slug index is searched for the prefix, not read whole.
        searched = [n for n, line in enumerate(lines) if "slug_pattern" in line]
        assert len(searched) >= 2, shown  # articles' and retired slugs' (each once or twice)
        assert all("Index Cond" in lines[n + 1] for n in searched), shown

    async def test_its_connections_in_use_are_counted_in_the_metrics(
        self, app: FastAPI, client: httpx.AsyncClient
    ) -> None:
        db = wired(app, Database)
        assert db.direct is not None

        async def in_use() -> float:
            text = (await client.get("/metrics")).text
            found = re.search(r"^asyncpress_db_pool_checked_out (\S+)$", text, re.M)
            assert found is not None
            return float(found.group(1))

        async with db.direct.connection(), db.direct.connection():
            # Two at least: the engine's are held now and then by background readers.
            assert await in_use() >= 2
        assert db.direct.in_use == 0
        assert db.direct.in_use == 0


async def test_a_direct_pool_of_zero_works_through_the_engine(database_url: str) -> None:
    settings = make_settings(database_url, db_direct_pool_size=0)
    engine = create_engine(settings)
    try:
        assert direct_pool(settings, engine) is None
    finally:
        await engine.dispose()
