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

from asyncpress.core.config import Settings
from asyncpress.core.db.engine import create_engine, direct_pool
from asyncpress.core.db_faults import classify
from asyncpress.core.uow import Database
from asyncpress.fast.direct import DirectPool
from tests.factories import register
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
