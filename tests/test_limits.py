"""Request deadlines and body limits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from asyncpress.core.config import Settings
from asyncpress.core.uow import Database
from asyncpress.core.web import provided
from asyncpress.ops.deadline import settled
from tests.support.app import make_settings, wired

# SQLite and PostgreSQL only: deadlines and body limits act before the database.
pytestmark = pytest.mark.above_the_database


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url, request_timeout_s=0.5, max_body_bytes=4096)


class TestDeadline:
    @pytest.mark.fresh_app
    async def test_a_request_past_its_deadline_gets_504_and_frees_its_connection(
        self, app: FastAPI, client: httpx.AsyncClient, backend: str
    ) -> None:
        @app.get("/api/_slow")
        async def slow(db: Annotated[Database, provided(Database)]) -> dict[str, str]:
            async with db.session() as session:
                if backend == "postgresql":
                    await session.execute(text("SELECT pg_sleep(5)"))
                else:
                    await session.execute(text("SELECT 1"))  # holds a connection...
                    await asyncio.sleep(5)  # ...while it waits
            return {}

        response = await client.get("/api/_slow")
        assert response.status_code == 504
        assert response.json() == {"errors": {"request": ["took longer than 0.5 s"]}}
        pool = wired(app, Database).engine.pool
        async with asyncio.timeout(5):
            while pool.checkedout():  # type: ignore[attr-defined]  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        assert pool.checkedout() == 0  # type: ignore[attr-defined]
        # and the app still answers
        assert (await client.get("/api/tags")).status_code == 200

    @pytest.mark.fresh_app
    async def test_a_timeout_inside_the_app_is_not_reported_as_the_deadline(
        self, app: FastAPI
    ) -> None:
        @app.get("/api/_own_timeout")
        async def own_timeout() -> dict[str, str]:
            raise TimeoutError("an upstream's, not the request's")

        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as plain:
            response = await plain.get("/api/_own_timeout")
        assert response.status_code == 500  # a bug to fix, not a slow request
        assert response.json() == {"errors": {"server": ["internal error"]}}

    async def test_fast_requests_are_untouched(self, client: httpx.AsyncClient) -> None:
        assert (await client.get("/api/tags")).status_code == 200


async def test_waiting_for_the_work_never_cancels_it() -> None:
    """The deadline's wait ends at the work's end or its time, and leaves the work alone."""
    release = asyncio.Event()

    async def slow() -> None:
        await release.wait()

    work = asyncio.ensure_future(slow())
    await settled(work, 0.01)  # time is up first
    assert not work.done()
    waiting = asyncio.ensure_future(settled(work, 60))
    await asyncio.sleep(0)
    waiting.cancel()  # the client went away while waiting
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert not work.done()
    release.set()
    await settled(work, 60)  # the work's end is first
    assert work.done()
    assert work.result() is None


class TestBodyLimit:
    async def test_declared_too_large_is_413(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            "/api/users",
            content=b"{" + b" " * 5000 + b"}",
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 413
        assert response.json() == {"errors": {"request": ["body is larger than 4096 bytes"]}}

    async def test_streamed_without_length_is_counted_and_413(
        self, client: httpx.AsyncClient
    ) -> None:
        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(10):
                yield b" " * 1000

        response = await client.post(
            "/api/users", content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 413
        assert response.json() == {"errors": {"request": ["is larger than 4096 bytes"]}}
