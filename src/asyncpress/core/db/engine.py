"""Engines and sessions: SQLite (aiosqlite), PostgreSQL (asyncpg), MySQL and MariaDB (asyncmy)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, exc
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from asyncpress.core.config import Settings
from asyncpress.fast.direct import DirectConnection, DirectPool
from asyncpress.fast.pool import FairAsyncPool


def _install_sqlite_hooks(engine: AsyncEngine) -> None:
    """Foreign keys, WAL, a busy timeout, and BEGIN emitted by us.

    pysqlite's own BEGIN handling is turned off so that a write use case can
    start with ``BEGIN IMMEDIATE`` (see :func:`begin_write`) instead of
    upgrading a read lock half-way, which SQLite answers with SQLITE_BUSY.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "PRAGMA foreign_keys=ON",
            "PRAGMA journal_mode=WAL",
            "PRAGMA synchronous=NORMAL",
            "PRAGMA busy_timeout=15000",
        ):
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


# What every MySQL/MariaDB connection is set to before it is used: rejected
# rather than truncated or zeroed values (strict), timestamps read and written
# in UTC whatever the server's zone, and no SQL mode a server's configuration
# file may add that changes what the statements mean.
_MYSQL_SESSION = (
    "SET SESSION time_zone = '+00:00', "
    "sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_DATE,NO_ZERO_IN_DATE,"
    "ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'"
)


# The oldest MariaDB with what the writes use: FOR UPDATE SKIP LOCKED (10.6),
# INSERT … RETURNING (10.5), DELETE … RETURNING. MySQL has no RETURNING.
MARIADB_MINIMUM = (10, 6)


def mariadb_version(version: str) -> tuple[int, int] | None:
    """(major, minor) of a MariaDB ``VERSION()`` string; None for another server."""
    if "mariadb" not in version.lower():
        return None
    major, minor, *_ = version.split("-", 1)[0].split(".")
    return int(major), int(minor)


def _install_mysql_hooks(engine: AsyncEngine, statement_timeout_ms: int) -> None:
    """The session settings above, and the statement deadline, on every new connection.

    A server other than MariaDB 10.6+ is refused here, with the reason,
    rather than failing later on the first statement it lacks.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SELECT VERSION()")
            (version,) = cursor.fetchone()
            found = mariadb_version(str(version))
            if found is None or found < MARIADB_MINIMUM:
                raise exc.ArgumentError(
                    f"the server is {version}; asyncpress needs MariaDB 10.6 or later "
                    "(FOR UPDATE SKIP LOCKED, INSERT and DELETE … RETURNING)"
                )
            cursor.execute(_MYSQL_SESSION)
            if statement_timeout_ms:
                seconds = statement_timeout_ms / 1000
                cursor.execute(f"SET SESSION max_statement_time = {seconds:.3f}")
        finally:
            cursor.close()


def postgresql_connect_args(settings: Settings) -> dict[str, Any]:
    """What every PostgreSQL connection is opened with, beyond the URL's parts."""
    server_settings = {"application_name": "asyncpress"}
    if settings.db_statement_timeout_ms:
        server_settings["statement_timeout"] = str(settings.db_statement_timeout_ms)
    return {"server_settings": server_settings}


def direct_pool(settings: Settings, engine: AsyncEngine) -> DirectPool | None:
    """The pool of one-statement reads and writes (``fast.direct``): PostgreSQL only."""
    if engine.dialect.name != "postgresql" or not settings.db_direct_pool_size:
        return None
    connect_args = postgresql_connect_args(settings)
    # Every statement of this pool is a lookup by key that one plan serves
    # for all values: planned once per connection. Left to choose, PostgreSQL
    # planned one article's read anew at every run (0.3 ms, twice the read).
    connect_args["server_settings"]["plan_cache_mode"] = "force_generic_plan"
    return DirectPool(
        engine,
        connect_args,
        size=settings.db_direct_pool_size,
        patience_s=settings.db_pool_timeout_s,
    )


def create_engine(settings: Settings) -> AsyncEngine:
    connect_args: dict[str, Any]
    options: dict[str, Any] = {}
    if settings.is_sqlite:
        connect_args = {"timeout": 15}
    elif settings.is_mysql:
        connect_args = {"charset": "utf8mb4"}
        options = {
            # PostgreSQL's default, which the use cases are written for: each
            # statement sees what committed before it, and InnoDB takes no gap
            # locks, which at REPEATABLE READ deadlock concurrent inserts.
            "isolation_level": "READ COMMITTED",
            # A connection the server closed after wait_timeout (or a restart)
            # is found by one COM_PING round trip at checkout and replaced;
            # recycling well inside the default wait_timeout (8 h) makes that rare.
            "pool_pre_ping": True,
            "pool_recycle": 3600,
        }
    else:
        connect_args = postgresql_connect_args(settings)
    engine = create_async_engine(
        settings.database_url,
        echo=settings.db_echo,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_s,
        poolclass=FairAsyncPool,
        connect_args=connect_args,
        **options,
    )
    if settings.is_sqlite:
        _install_sqlite_hooks(engine)
    elif settings.is_mysql:
        _install_mysql_hooks(engine, settings.db_statement_timeout_ms)
    else:
        event.listen(engine.sync_engine, "checkout", _replace_if_closed)
    return engine


def _replace_if_closed(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    """Hand out no pooled connection that the server has already closed.

    asyncpg reads every socket all the time, so a connection that a restarted
    or killed server closed is marked closed as soon as that happens; the
    pool then opens a new one. This replaces ``pool_pre_ping``, whose check
    costs three round trips (BEGIN, a query, ROLLBACK) on every checkout,
    about doubling the cost of a short query (docs/benchmarks.md).
    """
    if dbapi_connection.driver_connection.is_closed():
        raise exc.DisconnectionError("the server closed this connection")


async def refresh_statistics(engine: AsyncEngine) -> None:
    """Planner statistics (and, on PostgreSQL, the visibility map) after a bulk load.

    Seeding writes thousands of rows at once; until autovacuum gets to them
    the planner guesses and index-only scans read the table anyway: a count
    is a sequential scan before ``VACUUM ANALYZE`` and an index-only scan
    after (docs/benchmarks.md).
    """
    async with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.exec_driver_sql("VACUUM ANALYZE")
        elif family(engine.dialect.name) == "mysql":
            tables = (await connection.exec_driver_sql("SHOW TABLES")).scalars().all()
            if tables:
                names = ", ".join(f"`{name}`" for name in tables)
                await connection.exec_driver_sql(f"ANALYZE TABLE {names}")
            await connection.commit()
        else:
            await connection.exec_driver_sql("ANALYZE")
            await connection.commit()


# What a read runs on: a unit of work's session, or a connection of its own
# (``Database.reading``) when it needs no ORM.
Reader = AsyncSession | AsyncConnection | DirectConnection


def family(dialect_name: str) -> str:
    """``postgresql``, ``sqlite`` or ``mysql`` (MariaDB included: the same SQL here)."""
    return "mysql" if dialect_name == "mariadb" else dialect_name


def dialect_of(reader: Reader) -> str:
    """``postgresql``, ``sqlite`` or ``mysql``: the SQL the reader's engine speaks."""
    if isinstance(reader, DirectConnection):
        return "postgresql"
    if isinstance(reader, AsyncConnection):
        return family(reader.dialect.name)
    bind = reader.bind
    assert bind is not None, "sessions are made by create_sessionmaker, bound to an engine"
    return family(bind.dialect.name)


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def begin_write(session: AsyncSession) -> None:
    """Open the session's transaction as a write transaction.

    Call it first in a write use case, after any slow preparation (password
    hashing) and before the first statement. On SQLite it takes the write
    lock up front (``BEGIN IMMEDIATE``) so that concurrent writers queue on
    the busy timeout instead of failing; on PostgreSQL it is a plain BEGIN.
    """
    if session.in_transaction():
        raise RuntimeError("begin_write must open the session's transaction")
    bind = session.bind
    if bind is not None and bind.dialect.name == "sqlite":
        await session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
    else:
        await session.connection()
