"""Fixtures: the real app, through its lifespan, on real databases.

Every API test runs on SQLite, and on a PostgreSQL and a MariaDB server the
session starts itself (``ASYNCPRESS_TEST_BACKENDS=sqlite`` narrows that for
a quick local run). Tests marked ``postgres_only`` run on PostgreSQL alone,
``mariadb_only`` on MariaDB alone, ``servers_only`` on both database
servers; ``above_the_database`` modules (what they test happens before any
SQL) on SQLite and PostgreSQL, to keep ``make test`` within its four minutes.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import os
import shutil
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from blockbuster import blockbuster_ctx
from fastapi import FastAPI
from servers.mariadb import MariaDBServer
from servers.postgres import PostgresServer, empty_database, free_port
from servers.processes import Process, RedisServer, wait_for_port

from asyncpress.app.main import create_app
from asyncpress.core.config import Settings
from asyncpress.core.migrate import upgrade
from tests.support import contract
from tests.support.app import make_settings, reused_app, selected_backends
from tests.support.live import Served

# Fixtures and modules that start processes of their own (servers, Redis,
# upstreams, the CLI): their tests are marked "processes".
PROCESS_FIXTURES = frozenset({"server", "served", "redis_server", "upstream", "pair"})
PROCESS_MODULES = frozenset(
    {
        "test_bench_harness",
        "test_cli",
        "test_deployment",
        "test_events_processes",
        "test_fuzz",
        "test_notifications_processes",
        "test_package",
        "test_request_heads",
        "test_server",
    }
)


def _starts_processes(item: pytest.Item) -> bool:
    if not isinstance(item, pytest.Function):
        return False
    if PROCESS_FIXTURES & set(item.fixturenames):
        return True
    if item.module is not None and item.module.__name__.rsplit(".", 1)[-1] in PROCESS_MODULES:
        return True
    return "Served(" in inspect.getsource(item.function)


# Started first, so the workers do not end with one of them alone on a long
# test while the other has nothing left (make test runs pytest-xdist).
LONGEST_MODULES = ("test_fuzz", "test_bench_harness")


def _module_name(item: pytest.Item) -> str:
    module = getattr(item, "module", None)
    return "" if module is None else str(module.__name__).rsplit(".", 1)[-1]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    with_processes: set[str] = set()
    for item in items:
        if _starts_processes(item):
            item.add_marker(pytest.mark.processes)
            with_processes.add(_module_name(item))

    def rank(item: pytest.Item) -> int:
        name = _module_name(item)
        if name in LONGEST_MODULES:
            return 0
        return 1 if name in with_processes else 2

    # A stable sort by module: each module's tests stay together and in order.
    items[:] = sorted(items, key=rank)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" not in metafunc.fixturenames:
        return
    backends = selected_backends()
    if metafunc.definition.get_closest_marker("servers_only"):
        # Before postgres_only: a test of a PostgreSQL-only module may widen to both.
        backends = tuple(b for b in backends if b != "sqlite")
    elif metafunc.definition.get_closest_marker("postgres_only"):
        backends = tuple(b for b in backends if b == "postgresql")
    if metafunc.definition.get_closest_marker("above_the_database"):
        backends = tuple(b for b in backends if b != "mariadb")
    if metafunc.definition.get_closest_marker("mariadb_only"):
        backends = tuple(b for b in backends if b == "mariadb")
    metafunc.parametrize("backend", backends)


@pytest.fixture(scope="session", autouse=True)
def _load_contract() -> None:
    """Read the contract before any event loop runs (file reads block)."""
    contract.preload()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    postgres_server.psql("CREATE DATABASE asyncpress_test")
    url = postgres_server.url("asyncpress_test")
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def mariadb_server() -> Iterator[MariaDBServer]:
    server = MariaDBServer.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def mariadb_url(mariadb_server: MariaDBServer) -> str:
    mariadb_server.create_database("asyncpress_test")
    url = mariadb_server.url("asyncpress_test")
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture
def migrated_sqlite(sqlite_template: Path, tmp_path: Path) -> str:
    """A migrated SQLite database of the test's own; its URL."""
    target = tmp_path / "asyncpress.db"
    shutil.copyfile(sqlite_template, target)
    return f"sqlite+aiosqlite:///{target}"


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest) -> str:
    if backend in ("postgresql", "mariadb"):
        url: str = request.getfixturevalue(f"{backend}_url".replace("postgresql", "postgres"))
        return url
    sqlite: str = request.getfixturevalue("migrated_sqlite")
    return sqlite


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture
async def app(settings: Settings, request: pytest.FixtureRequest) -> AsyncIterator[FastAPI]:
    if not settings.is_sqlite:
        await empty_database(settings.database_url)
    if request.node.get_closest_marker("fresh_app"):
        application = create_app(settings)
    else:
        application = reused_app(settings)
    # From here on, any blocking call made on the event loop fails the test.
    with blockbuster_ctx():
        async with LifespanManager(application):
            yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://asyncpress.test",
        event_hooks={"response": [contract.hook]},
    ) as http:
        yield http


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[str]:
    """``asyncpress serve`` in its own process; yields its base URL."""
    if not database_url.startswith("sqlite"):
        asyncio.run(empty_database(database_url))
    served = Served(
        database_url,
        tmp_path,
        "server",
        CORS_ORIGINS="http://localhost:4200",
        LOG_LEVEL="WARNING",
    )
    try:
        yield served.base
    finally:
        served.process.stop(timeout=15)


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """servers.upstream (pages for link previews) on a free port; yields its base URL."""
    port = free_port()
    log = tmp_path_factory.mktemp("upstream") / "upstream.log"
    process = Process(["-m", "servers.upstream", str(port)], log)
    wait_for_port(port)
    yield f"http://localhost:{port}"
    process.kill()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A real redis-server on a free 127.0.0.1 port, stopped after the test."""
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.kill()


# Set by .ci/lowest: a full collection after each test, so that a connection a
# test dropped without closing is reported (ResourceWarning) against that test
# rather than against whichever test runs when the collector comes by.
COLLECT_EACH_TEST = os.environ.get("ASYNCPRESS_TEST_COLLECT_EACH") == "1"


def _database_threads() -> set[threading.Thread]:
    """aiosqlite's connection threads (one per open SQLite connection)."""
    return {t for t in threading.enumerate() if type(t).__module__.startswith("aiosqlite")}


@pytest.fixture(autouse=True)
def _no_connection_outlives_its_test() -> Iterator[None]:
    """A test closes every SQLite connection it opened before its event loop ends.

    One left open finishes its last call after the loop closed and raises in
    its thread, which pytest then reports against whichever test runs next.
    """
    before = _database_threads()
    yield
    if COLLECT_EACH_TEST:
        gc.collect()
    deadline = time.monotonic() + 2
    while (left := _database_threads() - before) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not left, f"{len(left)} SQLite connection(s) left open: {sorted(t.name for t in left)}"
