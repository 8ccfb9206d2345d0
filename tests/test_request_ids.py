"""Request ids: in the response, in every log record of the request, and in
the outbox and event rows it writes; one access line per request; a 500
logged once."""

from __future__ import annotations

import logging

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from asyncpress.core.uow import Database
from tests.factories import register
from tests.support.app import wired

# SQLite and PostgreSQL only: request ids are made and logged above the database.
pytestmark = pytest.mark.above_the_database


async def _column(app: FastAPI, table: str) -> list[str | None]:
    async with wired(app, Database).sessionmaker() as session:
        rows = await session.execute(text(f"SELECT request_id FROM {table} ORDER BY id"))  # noqa: S608
        return [row[0] for row in rows]


class TestRequestIds:
    async def test_a_given_id_is_kept_and_a_bad_one_replaced(
        self, client: httpx.AsyncClient
    ) -> None:
        given = await client.get("/api/tags", headers={"X-Request-ID": "lb-7f3a.2"})
        assert given.headers["X-Request-ID"] == "lb-7f3a.2"
        for bad in ("has spaces", "x" * 65, 'quote"d'):
            made = await client.get("/api/tags", headers={"X-Request-ID": bad})
            assert made.headers["X-Request-ID"] != bad
            assert len(made.headers["X-Request-ID"]) == 32
        first, second = [await client.get("/api/tags") for _ in range(2)]
        assert first.headers["X-Request-ID"] != second.headers["X-Request-ID"]

    async def test_the_outbox_and_event_rows_carry_the_id_of_their_request(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        await register(client, "ann")
        ben = await register(client, "ben")
        followed = await client.post(
            "/api/profiles/ann/follow", headers={**ben.headers, "X-Request-ID": "follow-1"}
        )
        assert followed.status_code == 200
        assert await _column(app, "events") == ["follow-1"]
        assert await _column(app, "outbox") == ["follow-1"]  # ann is told by e-mail

    async def test_one_access_line_per_request_with_route_status_and_duration(
        self, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.INFO, logger="asyncpress.access")
        await client.get("/api/articles/no-such-slug", headers={"X-Request-ID": "r-404"})
        (line,) = [r for r in caplog.records if r.name == "asyncpress.access"]
        assert line.request_id == "r-404"  # type: ignore[attr-defined]
        assert (line.method, line.route, line.status) == (  # type: ignore[attr-defined]
            "GET",
            "/api/articles/{slug}",
            404,
        )
        assert line.duration_ms >= 0  # type: ignore[attr-defined]

    async def test_invented_methods_share_one_metrics_label(
        self, client: httpx.AsyncClient
    ) -> None:
        """A client picks any method token; each must not become a series of its own."""
        for n in range(5):
            await client.request(f"BREW{n}", "/api/no-such-route")
        exposed = (await client.get("/metrics")).text
        assert 'method="BREW' not in exposed
        assert 'asyncpress_http_requests_total{method="OTHER",route="unmatched"' in exposed

    @pytest.mark.fresh_app
    async def test_a_500_is_logged_once_with_its_traceback_and_id(
        self, app: FastAPI, caplog: pytest.LogCaptureFixture
    ) -> None:
        @app.get("/api/_broken")
        async def broken() -> dict[str, str]:
            raise RuntimeError("a bug")

        caplog.set_level(logging.INFO)
        # Not the usual client: it fails any test on a 500, this one wants one.
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as raw:
            response = await raw.get("/api/_broken", headers={"X-Request-ID": "boom-1"})
        assert response.json() == {"errors": {"server": ["internal error"]}}
        assert response.status_code == 500
        assert response.headers["X-Request-ID"] == "boom-1"
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1, [r.getMessage() for r in errors]
        assert errors[0].exc_info is not None
        assert errors[0].request_id == "boom-1"  # type: ignore[attr-defined]
        (line,) = [r for r in caplog.records if r.name == "asyncpress.access"]
        assert line.status == 500  # type: ignore[attr-defined]
