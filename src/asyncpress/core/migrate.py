"""Run Alembic migrations from code (the CLI and the tests use this).

The migrations ship inside the package (``asyncpress/migrations``), so an
installed wheel migrates its database without a checkout; ``alembic.ini`` at
the repository's root is only for writing new revisions.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import NullPool, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url)
    config.attributes["configure_logging"] = False
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Migrate ``database_url`` to ``revision``. Blocking: call it off the event loop."""
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)


class DatabaseUnready(Exception):
    """The database cannot be used as it is; the message says why and what to do."""


# A database that does not answer is reported after this long, not after the
# driver's own minute-long connect timeout.
CONNECT_TIMEOUT_S = 10.0


def shown(database_url: str) -> str:
    """The URL as it may be printed: without its password."""
    return make_url(database_url).render_as_string(hide_password=True)


def unreachable(database_url: str, error: BaseException) -> DatabaseUnready:
    """What an operator reads when the database cannot be opened."""
    url = make_url(database_url)
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if url.get_backend_name() == "sqlite":
        folder = Path(url.database or ".").expanduser().resolve().parent
        hint = f"does the folder {folder} exist, and may this user write there?"
    else:
        hint = "is the server running, and are DATABASE_URL's host, port, user and password right?"
    return DatabaseUnready(f"cannot open the database {shown(database_url)} ({reason}): {hint}")


def check_sqlite_path(database_url: str) -> None:
    """A SQLite file that cannot be opened, named before any connection is tried.

    (A failed aiosqlite connect leaves its thread to finish after the check's
    event loop has closed, which prints a traceback of its own.)
    """
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return
    path = Path(url.database).expanduser()
    folder = path.resolve().parent
    usable = os.access(path, os.R_OK | os.W_OK) if path.exists() else os.access(folder, os.W_OK)
    if not folder.is_dir() or not usable:
        raise unreachable(database_url, PermissionError("unable to open database file"))


async def _current_revisions(database_url: str) -> tuple[str, ...]:
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_S), engine.connect() as connection:
            heads = await connection.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_heads()
            )
            return tuple(heads)
    finally:
        await engine.dispose()


def check_schema(database_url: str) -> None:
    """Raise :class:`DatabaseUnready` unless the database is reachable and fully migrated.

    Blocking (it runs an event loop of its own): the commands call it before
    they start, so that a missing server or migration is one readable line
    rather than a traceback from the first query.
    """
    check_sqlite_path(database_url)
    try:
        current = asyncio.run(_current_revisions(database_url))
    except (OSError, TimeoutError, DBAPIError) as exc:
        raise unreachable(database_url, exc) from exc
    scripts = ScriptDirectory.from_config(alembic_config(database_url))
    wanted = tuple(scripts.get_heads())
    if set(current) == set(wanted):
        return
    if not current:
        state = "has no asyncpress tables yet"
    else:
        state = f"is at revision {', '.join(current)}, this asyncpress needs {', '.join(wanted)}"
    if current and any(_unknown(scripts, revision) for revision in current):
        raise DatabaseUnready(
            f"the database {state}; it was migrated by a newer asyncpress: "
            "run that release, or `asyncpress db downgrade` with it first"
        )
    raise DatabaseUnready(f"the database {state}: run `asyncpress db upgrade`")


def _unknown(scripts: ScriptDirectory, revision: str) -> bool:
    try:
        return scripts.get_revision(revision) is None
    except CommandError:
        return True
