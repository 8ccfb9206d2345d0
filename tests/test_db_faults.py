"""Database faults the client did not cause: 503 with Retry-After, 504 on time, never a 500."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import httpx
import pytest
from anyio.to_thread import run_sync
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from asyncpress.app.main import create_app
from asyncpress.core.config import Settings
from asyncpress.core.uow import Database
from tests.factories import create_article, register
from tests.support.app import make_settings, wired
from tests.support.locks import dsn, waiting_backends


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(
        database_url,
        db_pool_size=2,
        db_max_overflow=0,
        db_pool_timeout_s=0.5,
        request_timeout_s=2.0,
        db_statement_timeout_ms=0,
    )


@pytest.fixture
async def plain(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client without the contract hook, which takes any 5xx for a bug: here 503 is the point."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://asyncpress.test") as http:
        yield http


@pytest.fixture
def short_statements(database_url: str) -> Settings:
    return make_settings(database_url, db_statement_timeout_ms=200)


@asynccontextmanager
async def _articles_locked(url: str) -> AsyncIterator[asyncpg.Connection]:
    """Another client holds an exclusive lock on ``articles`` until the block ends."""
    holder = await asyncpg.connect(dsn(url))
    try:
        transaction = holder.transaction()
        await transaction.start()
        await holder.execute("LOCK TABLE articles IN ACCESS EXCLUSIVE MODE")
        try:
            yield holder
        finally:
            await transaction.rollback()
    finally:
        await holder.close()


def _server_processes(backend_pid: int) -> list[int]:
    """The postmaster of ``backend_pid`` and every process it started (Linux /proc)."""

    def parent(pid: int) -> int:
        with open(f"/proc/{pid}/stat") as stat:
            return int(stat.read().rsplit(")", 1)[1].split()[1])

    postmaster = parent(backend_pid)
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if parent(int(entry)) == postmaster:
                    children.append(int(entry))
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
    return [postmaster, *children]


def _is_503(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.json() == {"errors": {"database": ["is unavailable; try again shortly"]}}
    assert response.headers["retry-after"] == "1"


class TestPoolExhausted:
    async def test_waiters_get_503_with_retry_after(
        self, app: FastAPI, client: httpx.AsyncClient, plain: httpx.AsyncClient
    ) -> None:
        alice = await register(client)
        engine = wired(app, Database).engine
        # Every connection of the pool is taken (a stalled database looks the same).
        async with engine.connect() as first, engine.connect() as second:
            await first.exec_driver_sql("SELECT 1")
            await second.exec_driver_sql("SELECT 1")
            responses = await asyncio.gather(
                *(plain.get("/api/articles", headers=alice.headers) for _ in range(5))
            )
        for response in responses:
            _is_503(response)
        assert (await client.get("/api/articles")).status_code == 200


@pytest.mark.postgres_only
class TestConnectionLost:
    async def test_a_backend_killed_mid_request_is_503(
        self, client: httpx.AsyncClient, plain: httpx.AsyncClient, database_url: str
    ) -> None:
        alice = await register(client)
        slug = (await create_article(client, alice))["slug"]
        async with _articles_locked(database_url) as holder:
            reading = asyncio.create_task(plain.get(f"/api/articles/{slug}"))
            for pid in await waiting_backends(holder):
                await holder.execute("SELECT pg_terminate_backend($1)", pid)
            _is_503(await reading)
        # The pool replaces the dead connection; the next request is served.
        assert (await client.get(f"/api/articles/{slug}")).status_code == 200

    async def test_a_statement_timeout_is_504(
        self, database_url: str, client: httpx.AsyncClient, short_statements: Settings
    ) -> None:
        alice = await register(client)
        short = create_app(short_statements)
        async with (
            LifespanManager(short),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=short), base_url="http://t"
            ) as other,
            _articles_locked(database_url),
        ):
            response = await other.get("/api/articles", headers=alice.headers)
        assert response.status_code == 504
        assert response.json() == {"errors": {"database": ["did not answer in time"]}}


@pytest.mark.postgres_only
class TestFrozenDatabase:
    async def test_the_deadline_holds_when_the_database_stops_answering(
        self, app: FastAPI, client: httpx.AsyncClient, database_url: str
    ) -> None:
        """A frozen server cannot roll back the cancelled work; the 504 does not wait for it."""
        alice = await register(client)
        frozen: list[int] = []
        async with _articles_locked(database_url) as holder:
            started = time.monotonic()
            writing = asyncio.create_task(
                client.post(
                    "/api/articles",
                    json={"article": {"title": "t", "description": "d", "body": "b"}},
                    headers=alice.headers,
                )
            )
            try:
                waiting = await waiting_backends(holder)
                # The whole server stops: backends, and the postmaster that
                # would take the driver's cancel request.
                frozen = await run_sync(_server_processes, waiting[0])
                for pid in frozen:
                    os.kill(pid, signal.SIGSTOP)
                async with asyncio.timeout(8):  # bounds the test itself
                    response = await writing
                elapsed = time.monotonic() - started
            finally:
                for pid in frozen:
                    os.kill(pid, signal.SIGCONT)
        assert response.status_code == 504
        assert response.json() == {"errors": {"request": ["took longer than 2 s"]}}
        # The bound is the deadline + 0.5 s; 1.5 s leaves room for a busy
        # machine. Before the fix the answer waited on the frozen server's
        # cancel for 2 s more (4.0 s here against 2.25 s after).
        assert elapsed < 2.0 + 1.5


@pytest.mark.postgres_only
async def test_a_deadlock_victim_is_a_fault_to_retry_not_a_bug(database_url: str) -> None:
    """PostgreSQL's deadlock victim is answered 503 with Retry-After, as
    MySQL's is, once the use case's own retry did not get through: its
    transaction was rolled back, and the client may try again."""
    from asyncpress.core.db_faults import classify  # noqa: PLC0415 - drivers

    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as first, engine.connect() as second:
            await first.execute(text("SELECT pg_advisory_xact_lock(41)"))
            await second.execute(text("SELECT pg_advisory_xact_lock(42)"))
            outcomes = await asyncio.gather(
                first.execute(text("SELECT pg_advisory_xact_lock(42)")),
                second.execute(text("SELECT pg_advisory_xact_lock(41)")),
                return_exceptions=True,
            )
    finally:
        await engine.dispose()
    victims = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(victims) == 1, outcomes
    assert isinstance(victims[0], DBAPIError)
    assert classify(victims[0]) == 503
    driver_error = victims[0].orig
    assert driver_error is not None
    assert classify(driver_error.__cause__ or driver_error) == 503  # asyncpg's own, unwrapped
