"""Cross-cutting behaviour of the app: CORS, errors, routes, the event-loop guard."""

from __future__ import annotations

import asyncio
import re
import ssl
import threading
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from anyio.to_thread import run_sync
from asgi_lifespan import LifespanManager
from blockbuster import BlockingError
from fastapi import FastAPI
from fastapi.routing import APIRoute, APIWebSocketRoute
from servers.mariadb import MariaDBServer
from servers.postgres import PostgresServer
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import RelationshipProperty

from asyncpress.app.main import create_app
from asyncpress.app.models import Base
from asyncpress.core.config import Settings
from asyncpress.core.db.engine import MARIADB_MINIMUM, mariadb_version
from asyncpress.core.db_faults import classify
from asyncpress.core.migrate import upgrade
from asyncpress.core.schemas import iso_millis
from asyncpress.core.uow import Database
from asyncpress.ops.cors import Cors
from asyncpress.ops.request_id import RequestIdMiddleware
from tests.support import contract
from tests.support.app import make_settings, wired
from tests.support.http import preflight


class TestCors:
    async def test_preflight_from_a_browser_front_end(self, client: httpx.AsyncClient) -> None:
        response = await preflight(client, "/api/articles", "POST", "authorization,content-type")
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == "*"
        allowed = response.headers["access-control-allow-headers"].lower()
        assert "authorization" in allowed
        assert "content-type" in allowed

    async def test_simple_request_gets_the_header(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/api/tags", headers={"Origin": "https://app.example"})
        assert response.headers["access-control-allow-origin"] == "*"
        assert response.headers["access-control-expose-headers"] == "X-Request-ID"
        assert response.headers["vary"] == "Origin"

    async def test_every_response_varies_by_origin(self, client: httpx.AsyncClient) -> None:
        # Without an Origin there is no CORS header, but a shared cache must
        # still not give this answer to a browser that sends one.
        response = await client.get("/api/tags")
        assert "access-control-allow-origin" not in response.headers
        assert response.headers["vary"] == "Origin"

    async def test_a_refused_preflight_says_why_in_the_envelope(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await preflight(client, "/api/articles", "PATCH", "authorization, x-secret")
        assert response.status_code == 400
        errors = response.json()["errors"]
        assert set(errors) == {"method", "headers"}
        assert errors["headers"] == ["x-secret may not be sent"]
        assert response.headers["x-request-id"]

    async def test_a_preflight_is_answered_before_routing(self, client: httpx.AsyncClient) -> None:
        # No route answers OPTIONS on this path; the preflight is not routed.
        response = await preflight(client, "/api/profiles/someone/follow", "DELETE")
        assert response.status_code == 200
        assert "DELETE" in response.headers["access-control-allow-methods"]
        assert response.headers["access-control-max-age"] == "600"
        assert response.content == b""

    async def test_an_options_request_without_a_method_to_ask_is_routed(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.options("/api/tags", headers={"Origin": "https://app.example"})
        assert response.status_code == 405
        assert response.headers["access-control-allow-origin"] == "*"

    async def test_listed_origins_are_named_and_others_get_nothing(self) -> None:
        async def hello(scope: Any, receive: Any, send: Any) -> None:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"hi"})

        cors = Cors(["https://app.example"], methods=["GET"], headers=[], expose=[], max_age_s=60)
        layer = RequestIdMiddleware(hello, cors=cors)
        transport = httpx.ASGITransport(app=layer)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as api:
            listed = await api.get("/", headers={"Origin": "https://app.example"})
            other = await api.get("/", headers={"Origin": "https://evil.example"})
            refused = await preflight(api, "/", "GET", origin="https://evil.example")
        assert listed.headers["access-control-allow-origin"] == "https://app.example"
        assert "access-control-expose-headers" not in listed.headers
        assert "access-control-allow-origin" not in other.headers
        assert other.text == "hi"  # the browser, not the server, withholds it
        assert refused.status_code == 400
        assert refused.json() == {
            "errors": {"origin": ["https://evil.example may not call this API"]}
        }


class TestErrors:
    async def test_unknown_route_is_404_in_the_envelope(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/api/nowhere")
        assert response.status_code == 404
        assert response.json() == {"errors": {"path": ["not found"]}}

    async def test_wrong_method_is_405_in_the_envelope(self, client: httpx.AsyncClient) -> None:
        response = await client.patch("/api/tags")
        assert response.status_code == 405
        assert list(response.json()["errors"]) == ["method"]

    async def test_responses_carry_server_timing(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/api/tags")
        name, _, duration = response.headers["server-timing"].partition(";dur=")
        assert name == "app"
        assert float(duration) >= 0

    async def test_health(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/api/health")
        assert response.json() == {"status": "ok"}


def test_every_contract_operation_is_served(app_routes: set[tuple[str, str]]) -> None:
    wanted = {
        (method.upper(), "/api" + path)
        for path, item in contract.contract()["paths"].items()
        for method in item
    }
    assert wanted <= app_routes, wanted - app_routes


def test_routes_are_matched_from_one_flat_list() -> None:
    """No included routers: FastAPI walks each inclusion's wrapper on every request."""
    app = create_app(make_settings("sqlite+aiosqlite:///unused.db"))
    served = [getattr(route, "path", "") for route in app.router.routes]
    assert not [r for r in app.router.routes if hasattr(r, "effective_candidates")]
    assert "/api/profiles/{username}" in served
    assert "/api/articles/{slug}/comments/{id}" in served
    # The feed is matched before an article whose slug would be "feed".
    assert served.index("/api/articles/feed") < served.index("/api/articles/{slug}")


def test_no_route_is_hidden_behind_an_earlier_one() -> None:
    """Routes are tried in order; the first that takes a request's path and method serves it.

    Every route's own path (its parameters filled in) must reach that route,
    whatever order the routes are served in (``app.main.HOT_READS``).
    """
    app = create_app(make_settings("sqlite+aiosqlite:///unused.db"))
    routes = [r for r in app.router.routes if isinstance(r, APIRoute | APIWebSocketRoute)]
    hidden = []
    for j, later in enumerate(routes):
        sample = re.sub(r"\{[^}]+\}", "x1", later.path)
        for earlier in routes[:j]:
            # A WebSocket route has no methods: it takes only WebSocket scopes.
            kinds = (getattr(earlier, "methods", None), getattr(later, "methods", None))
            same_method = (kinds[0] is None) == (kinds[1] is None) and (
                kinds[0] is None or bool(set(kinds[0]) & set(kinds[1] or ()))
            )
            if same_method and earlier.path_regex.match(sample):
                hidden.append((later.path, earlier.path))
    assert not hidden


def test_the_reads_a_front_end_sends_most_are_matched_first() -> None:
    # FastAPI tries the routes one after another, about a microsecond each.
    app = create_app(make_settings("sqlite+aiosqlite:///unused.db"))
    tried = [
        (sorted(getattr(r, "methods", None) or []), getattr(r, "path", ""))
        for r in app.router.routes
    ]
    for path in ("/api/articles/{slug}", "/api/tags", "/api/profiles/{username}"):
        assert tried.index((["GET"], path)) < 8, tried[:8]


@pytest.fixture
def app_routes() -> set[tuple[str, str]]:
    app = create_app(make_settings("sqlite+aiosqlite:///unused.db"))
    spec = app.openapi()
    return {(m.upper(), p) for p, item in spec["paths"].items() for m in item}


def test_every_relationship_refuses_lazy_loading() -> None:
    relationships = [
        prop
        for mapper in Base.registry.mappers
        for prop in mapper.iterate_properties
        if isinstance(prop, RelationshipProperty)
    ]
    assert relationships
    assert all(r.lazy == "raise" for r in relationships), [
        (r.parent.class_.__name__, r.key, r.lazy) for r in relationships if r.lazy != "raise"
    ]


class TestEventLoopGuard:
    """The guard the whole suite relies on is live: a blocking call fails a test."""

    @pytest.mark.fresh_app
    async def test_a_blocking_call_in_a_request_is_caught(
        self, app: FastAPI, caplog: pytest.LogCaptureFixture
    ) -> None:
        @app.get("/api/_blocking")
        async def blocking() -> dict[str, str]:
            time.sleep(0.001)  # noqa: ASYNC251 - the point of the test
            return {}

        # The client of the other tests fails any test on a 500; this one
        # looks at the 500 and at what was logged.
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as raw:
            response = await raw.get("/api/_blocking")
        assert response.status_code == 500
        logged = [r.exc_info[0] for r in caplog.records if r.exc_info]
        assert logged == [BlockingError]


async def test_the_certificate_store_is_loaded_once_per_process_off_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The preview client's TLS context reads the CA bundle: tens of ms of CPU and file reads.

    It is built once per process, in a worker thread, however many times the
    app starts (the test suite starts it hundreds of times).
    """
    built_on: list[bool] = []
    create = ssl.create_default_context

    def counted(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        built_on.append(threading.current_thread() is threading.main_thread())
        return create(*args, **kwargs)

    monkeypatch.setattr(ssl, "create_default_context", counted)
    for n in range(2):
        url = f"sqlite+aiosqlite:///{tmp_path / f'{n}.db'}"
        await run_sync(upgrade, url)
        async with LifespanManager(create_app(make_settings(url))):
            pass
    assert built_on in ([], [False])


async def _serves_again(client: httpx.AsyncClient) -> None:
    """Eight reads at once (every pooled connection checked out again), then a write."""
    responses = await asyncio.gather(*(client.get("/api/health") for _ in range(8)))
    assert [r.status_code for r in responses] == [200] * 8
    registered = await client.post(
        "/api/users",
        json={"user": {"username": "after", "email": "after@example.com", "password": "p" * 8}},
    )
    assert registered.status_code == 201
    assert (await client.get("/api/profiles/after")).status_code == 200


class TestDatabaseSettings:
    async def test_pool_is_sized_from_settings(self, app: FastAPI, backend: str) -> None:
        engine = wired(app, Database).engine
        settings = wired(app, Settings)
        assert engine.pool.size() == settings.db_pool_size  # type: ignore[attr-defined]

    @pytest.mark.postgres_only
    async def test_requests_succeed_right_after_a_database_restart(
        self, app: FastAPI, client: httpx.AsyncClient, postgres_server: PostgresServer
    ) -> None:
        # Several pooled connections at once, so that all of them go stale.
        responses = await asyncio.gather(*(client.get("/api/health") for _ in range(8)))
        assert {r.status_code for r in responses} == {200}
        pool = wired(app, Database).engine.pool
        assert pool.checkedin() >= 2  # type: ignore[attr-defined]
        await run_sync(postgres_server.restart)
        # No pre-ping: a pooled connection the server closed is replaced at checkout.
        await _serves_again(client)

    @pytest.mark.postgres_only
    async def test_postgres_sessions_carry_a_statement_timeout(
        self, app: FastAPI, backend: str
    ) -> None:
        async with wired(app, Database).sessionmaker() as session:
            shown = (await session.execute(text("SHOW statement_timeout"))).scalar_one()
        assert shown == "15s"

    @pytest.mark.servers_only
    async def test_a_query_past_the_timeout_is_stopped_by_the_server_and_is_504(
        self, database_url: str, backend: str
    ) -> None:
        sleep, said = {
            "postgresql": ("SELECT pg_sleep(5)", "statement timeout"),
            "mariadb": ("SELECT SLEEP(5)", "max_statement_time"),
        }[backend]
        app = create_app(make_settings(database_url, db_statement_timeout_ms=200))
        async with LifespanManager(app), wired(app, Database).sessionmaker() as session:
            with pytest.raises(DBAPIError, match=said) as raised:
                await session.execute(text(sleep))
        assert classify(raised.value) == 504

    @pytest.mark.mariadb_only
    async def test_mariadb_sessions_are_utc_strict_read_committed_and_bounded(
        self, app: FastAPI, backend: str
    ) -> None:
        async with wired(app, Database).sessionmaker() as session:
            row = (
                await session.execute(
                    text(
                        "SELECT @@session.time_zone, @@session.sql_mode,"
                        " @@session.tx_isolation, @@session.max_statement_time"
                    )
                )
            ).one()
        zone, mode, isolation, limit = row
        assert zone == "+00:00"
        assert "STRICT_ALL_TABLES" in mode.split(",")
        assert isolation == "READ-COMMITTED"
        assert float(limit) == 15.0

    @pytest.mark.mariadb_only
    async def test_requests_succeed_after_mariadb_closed_every_connection(
        self, app: FastAPI, client: httpx.AsyncClient, mariadb_server: MariaDBServer
    ) -> None:
        """What wait_timeout (or a restart) does to a pool: the server closes
        its idle connections. Pre-ping finds each at checkout and replaces it."""
        responses = await asyncio.gather(*(client.get("/api/health") for _ in range(8)))
        assert {r.status_code for r in responses} == {200}
        pool = wired(app, Database).engine.pool
        assert pool.checkedin() >= 2  # type: ignore[attr-defined]
        ids = await run_sync(
            mariadb_server.sql,
            "SELECT ID FROM information_schema.PROCESSLIST WHERE USER = 'asyncpress'",
        )
        killed = [line for line in ids.split() if line.strip()]
        assert len(killed) >= 2
        await run_sync(mariadb_server.sql, "; ".join(f"KILL {i}" for i in killed))
        await _serves_again(client)


@pytest.mark.parametrize(
    ("moment", "wire"),
    [
        (datetime(2016, 2, 18, 3, 22, 56, 637999, tzinfo=UTC), "2016-02-18T03:22:56.637Z"),
        (datetime(2016, 2, 18, 3, 22, 56, tzinfo=UTC), "2016-02-18T03:22:56.000Z"),
        # Another zone is shown in UTC; microseconds are cut, never rounded up.
        (
            datetime(2016, 2, 18, 5, 22, 56, 1999, tzinfo=timezone(timedelta(hours=2))),
            "2016-02-18T03:22:56.001Z",
        ),
    ],
)
def test_timestamps_are_utc_with_milliseconds(moment: datetime, wire: str) -> None:
    assert iso_millis(moment) == wire


@pytest.mark.parametrize(
    ("version", "accepted"),
    [
        ("10.11.19-MariaDB-0+deb12u1", True),
        ("10.6.21-MariaDB", True),
        ("10.5.27-MariaDB-log", False),  # no FOR UPDATE SKIP LOCKED
        ("8.0.40", False),  # MySQL: no INSERT or DELETE … RETURNING
        ("8.4.3-commercial", False),
    ],
)
def test_only_mariadb_10_6_or_later_is_accepted(version: str, accepted: bool) -> None:
    found = mariadb_version(version)
    assert (found is not None and found >= MARIADB_MINIMUM) is accepted
