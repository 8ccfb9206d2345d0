"""Failed logins and registrations are limited per client, in memory or shared through Redis."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from servers.postgres import empty_database, free_port
from servers.processes import RedisServer

from asyncpress.app.main import create_app
from tests.support.app import make_settings, row_count
from tests.support.http import TLS
from tests.support.live import Served

# SQLite and PostgreSQL only: limits are counted in memory or Redis, not in the database.
pytestmark = pytest.mark.above_the_database

LIMITS = {
    "rate_limits": True,
    "login_failures_per_account_address": "3 per minute",
    "login_failures_per_account": "5 per minute",
    "registrations_per_address": "3 per minute",
}


@asynccontextmanager
async def _app(database_url: str, **overrides: Any) -> AsyncIterator[FastAPI]:
    await empty_database(database_url)
    application = create_app(make_settings(database_url, **{**LIMITS, **overrides}))
    async with LifespanManager(application):
        yield application


def _client(app: FastAPI, address: str = "198.51.100.7") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://asyncpress.test")


async def _register(http: httpx.AsyncClient, name: str, password: str = "right password") -> int:
    user = {"username": name, "email": f"{name}@example.com", "password": password}
    return (await http.post("/api/users", json={"user": user})).status_code


async def _login(http: httpx.AsyncClient, name: str, password: str) -> httpx.Response:
    user = {"email": f"{name}@example.com", "password": password}
    return await http.post("/api/users/login", json={"user": user})


def _is_429(response: httpx.Response, field: str) -> None:
    assert response.status_code == 429, response.text
    assert list(response.json()["errors"]) == [field]
    assert 1 <= int(response.headers["retry-after"]) <= 60


class TestFailedLogins:
    async def test_an_address_guessing_one_account_is_stopped_before_hashing(
        self, database_url: str
    ) -> None:
        async with _app(database_url) as app, _client(app) as http:
            assert await _register(http, "alice") == 201
            for _ in range(3):
                assert (await _login(http, "alice", "wrong")).status_code == 401
            _is_429(await _login(http, "alice", "wrong"), "email or password")
            # Over the limit even the right password waits: the guesser cannot tell.
            _is_429(await _login(http, "alice", "right password"), "email or password")
            # Another account on the same address is not refused for alice's failures,
            # and alice from another address still gets in.
            assert await _register(http, "bob") == 201
            assert (await _login(http, "bob", "right password")).status_code == 200
            async with _client(app, "203.0.113.9") as elsewhere:
                assert (await _login(elsewhere, "alice", "right password")).status_code == 200

    async def test_guessing_one_account_from_many_addresses_is_stopped(
        self, database_url: str
    ) -> None:
        async with _app(database_url) as app:
            async with _client(app) as http:
                assert await _register(http, "carol") == 201
            for n in range(5):
                async with _client(app, f"192.0.2.{n + 1}") as http:
                    assert (await _login(http, "carol", "wrong")).status_code == 401
            async with _client(app, "192.0.2.99") as http:
                _is_429(await _login(http, "carol", "wrong"), "email or password")

    async def test_with_limits_off_failures_are_only_401(self, database_url: str) -> None:
        async with _app(database_url, rate_limits=False) as app, _client(app) as http:
            assert await _register(http, "dave") == 201
            for _ in range(12):
                assert (await _login(http, "dave", "wrong")).status_code == 401
            assert (await _login(http, "dave", "right password")).status_code == 200


class TestRegistrations:
    async def test_registrations_per_address_are_limited(self, database_url: str) -> None:
        async with _app(database_url) as app:
            async with _client(app) as http:
                assert [await _register(http, f"r{n}") for n in range(3)] == [201] * 3
                response = await http.post(
                    "/api/users",
                    json={"user": {"username": "r9", "email": "r9@e.com", "password": "p" * 8}},
                )
                _is_429(response, "user")
            async with _client(app, "203.0.113.50") as other:
                assert await _register(other, "r4") == 201
            assert await row_count(app, "users") == 4


class TestSharedThroughRedis:
    async def test_failures_on_one_process_count_on_another(
        self, database_url: str, redis_server: RedisServer
    ) -> None:
        async with (
            _app(database_url, redis_url=redis_server.url) as first,
            _app(database_url, redis_url=redis_server.url) as second,
        ):
            async with _client(first) as http:
                assert await _register(http, "erin") == 201
                for _ in range(3):
                    assert (await _login(http, "erin", "wrong")).status_code == 401
            async with _client(second) as http:
                _is_429(await _login(http, "erin", "wrong"), "email or password")

    async def test_a_redis_outage_refuses_nobody(self, database_url: str) -> None:
        dead = f"redis://127.0.0.1:{free_port()}/0"
        async with _app(database_url, redis_url=dead) as app, _client(app) as http:
            assert await _register(http, "frank") == 201
            for _ in range(5):
                assert (await _login(http, "frank", "wrong")).status_code == 401
            assert (await _login(http, "frank", "right password")).status_code == 200


def test_a_served_process_limits_the_address_its_proxy_forwards(
    database_url: str, tmp_path: Path
) -> None:
    served = Served(
        database_url,
        tmp_path,
        "proxied",
        RATE_LIMITS="true",
        REGISTRATIONS_PER_ADDRESS="2 per minute",
        FORWARDED_ALLOW_IPS="127.0.0.1",
    )
    try:

        def register(name: str, forwarded_for: str) -> int:
            user = {"username": name, "email": f"{name}@example.com", "password": "p" * 8}
            return httpx.post(
                f"{served.base}/api/users",
                json={"user": user},
                headers={
                    "X-Forwarded-For": forwarded_for,
                    "X-Forwarded-Proto": "https",
                    "X-Request-ID": f"lb-{name}",
                },
                verify=TLS,
                timeout=10,
            ).status_code

        assert [register(f"p{n}", "203.0.113.1") for n in range(3)] == [201, 201, 429]
        assert register("q1", "203.0.113.2") == 201
    finally:
        served.process.stop(timeout=15)
    # The process logs JSON lines (production); the proxy's request id is on
    # the access line of the request it named.
    lines = [
        json.loads(line) for line in served.process.output().splitlines() if line.startswith("{")
    ]
    (refused,) = [
        x for x in lines if x["logger"] == "asyncpress.access" and x["request_id"] == "lb-p2"
    ]
    assert (refused["route"], refused["status"], refused["method"]) == ("/api/users", 429, "POST")
