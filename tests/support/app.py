"""Helpers for tests of the in-process app: its settings, its parts, its database."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import asyncpg
from fastapi import FastAPI
from servers.processes import TEST_SECRET
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from asyncpress.app.main import create_app
from asyncpress.app.models import Base
from asyncpress.core.config import Settings
from asyncpress.core.uow import Database, FollowUps
from asyncpress.core.web import Wiring
from asyncpress.events.hub import BACKGROUND

T = TypeVar("T")

# Children before parents, every table the models declare.
TABLES = tuple(table.name for table in reversed(Base.metadata.sorted_tables))

ALL_BACKENDS = ("sqlite", "postgresql", "mariadb")


def selected_backends() -> tuple[str, ...]:
    """The backends this run tests (``ASYNCPRESS_TEST_BACKENDS`` narrows them)."""
    wanted = os.environ.get("ASYNCPRESS_TEST_BACKENDS")
    if not wanted:
        return ALL_BACKENDS
    return tuple(b.strip() for b in wanted.split(",") if b.strip() in ALL_BACKENDS)


# Every mailbox directory lives under one that is removed when the run ends.
_MAILBOXES = tempfile.TemporaryDirectory(prefix="asyncpress-mailboxes-")


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "test",
        "database_url": database_url,
        "jwt_secret": TEST_SECRET,
        "log_level": "WARNING",
        # Cheap hashing keeps the suite fast; production costs are the defaults.
        "argon2_time_cost": 1,
        "argon2_memory_kib": 64,
        "argon2_parallelism": 1,
        "hash_concurrency": 4,
        "db_pool_size": 20,
        "db_max_overflow": 40,
        # Delivery runs only in the tests about it (they turn it on), so the
        # API tests stay deterministic; nothing is ever written to the repo.
        "outbox_in_process": False,
        # In-process apps share the test runner's process: its objects are not
        # the app's to freeze. Served apps (real processes) keep the default.
        "gc_freeze": False,
        # Tests register many accounts from one address; tests/test_rate_limits.py
        # turns the limits on.
        "rate_limits": False,
        # An in-process app is the only process serving its database.
        "local_cache": "on",
        "mailbox_dir": tempfile.mkdtemp(prefix="mailbox-", dir=_MAILBOXES.name),
    }
    values.update(overrides)
    return Settings(**values)


# One app object per worker process and per settings (but the database and
# the mailbox, which each test has its own of). Building an app and its first
# request cost FastAPI a quarter of a second (every route's dependencies are
# resolved again for each app object): most of a short test. Each test still
# runs the app's whole lifespan, on its own database.
_APPS: dict[str, FastAPI] = {}
_PER_TEST = {"database_url", "mailbox_dir"}


def reused_app(settings: Settings) -> FastAPI:
    """The app built for these settings, given this test's database and mailbox."""
    key = settings.model_dump_json(exclude=_PER_TEST)
    app = _APPS.get(key)
    if app is None:
        app = _APPS[key] = create_app(settings)
    app.state.settings = settings
    return app


def wired(app: FastAPI, kind: type[T]) -> T:
    """The instance of ``kind`` the app's lifespan wired (a database, the outbox…)."""
    wiring: Wiring = app.state.wiring
    return wiring.get(kind)


class StatementCounter:
    def __init__(self) -> None:
        self.statements: list[str] = []

    @property
    def count(self) -> int:
        return len(self.statements)


@contextmanager
def count_statements(app: FastAPI) -> Iterator[StatementCounter]:
    """Counts SQL statements sent (transaction control such as BEGIN excluded)."""
    counter = StatementCounter()
    engine = wired(app, Database).engine.sync_engine

    def _record(
        _conn: Any, _cursor: Any, statement: str, _params: Any, context: Any, _many: bool
    ) -> None:
        if context.execution_options.get(BACKGROUND):
            return  # the event hub's own reads, not the request's
        if statement.split(None, 1)[0].upper() not in {"BEGIN", "COMMIT", "ROLLBACK"}:
            counter.statements.append(statement)

    event.listen(engine, "before_cursor_execute", _record)
    try:
        yield counter
    finally:
        event.remove(engine, "before_cursor_execute", _record)


async def row_count(app: FastAPI, table: str) -> int:
    """Rows in ``table``, read straight from the database."""
    assert table in TABLES
    async with wired(app, Database).sessionmaker() as session:
        result = await session.execute(text(f"SELECT count(*) FROM {table}"))  # noqa: S608
        return int(result.scalar_one())


class CommitFailed(Exception):
    """Raised by the commits of ``failing_at_commit``'s units of work."""


def failing_at_commit(db: Database) -> tuple[Database, list[FollowUps]]:
    """A Database on ``db``'s engine whose units of work fail as they commit,
    and the follow-ups it carried out (none should be, since nothing committed)."""

    class FailingCommit(AsyncSession):
        async def commit(self) -> None:
            raise CommitFailed

    followed: list[FollowUps] = []

    class Recorded:
        async def run(self, follow_ups: FollowUps) -> None:
            followed.append(follow_ups)

    sessions: async_sessionmaker[AsyncSession] = async_sessionmaker(
        db.engine, class_=FailingCommit, expire_on_commit=False
    )
    return Database(db.engine, sessions, Recorded()), followed


async def refused_at_last_write(
    db: Database, backend: str, table: str, check: str
) -> type[Exception]:
    """Make a write fail at its end, nothing of it committed; what it then raises.

    On PostgreSQL, writes in one statement (``core.uow.OneStatement``) have
    no commit to fail: ``table`` gets a CHECK constraint (``check``) that the
    statement's last part breaks. Elsewhere ``failing_at_commit``'s units
    of work fail as they commit.
    """
    if backend != "postgresql":
        return CommitFailed
    async with db.engine.begin() as connection:
        await connection.execute(text(f"ALTER TABLE {table} ADD CONSTRAINT no CHECK ({check})"))
    refused: type[Exception] = asyncpg.CheckViolationError
    return refused
