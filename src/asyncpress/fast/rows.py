"""Driver-direct statements for the hot paths (see README.md beside this file)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Delete, Insert, Select, Update
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.util import immutabledict

from asyncpress.fast.direct import DirectConnection


class Prepared:
    """A statement built once, with bound parameters, for the hot paths.

    On PostgreSQL :meth:`rows` compiles it once and sends it straight to
    asyncpg on the session's connection. SQLAlchemy's execution path (cache key,
    execution context, the adapter's cursor, ``Row`` objects) cost more CPU
    in the app than PostgreSQL spent running the statement (docs/benchmarks.md). The
    rows come back as asyncpg records: read them by column name. A write
    returns the rows of its ``RETURNING`` clause. Values reach the driver as
    given (no column defaults, no type's bind processing): a write names
    every column it sets, in the driver's own types.
    ``before_cursor_execute`` and ``after_cursor_execute`` listeners still
    see each statement, with no cursor and a ``DirectContext``; SQLAlchemy's
    echo (``DB_ECHO``) does not show it.
    A read runs in the session's transaction if one has begun on the
    driver, else on its own; a write begins it first.
    It runs on a session, or on a connection of its own for a read that
    needs no ORM: no session, no session transaction to set up and tear
    down around one statement.
    On SQLite it runs through the session or connection as usual.
    """

    def __init__(
        self,
        statement: Select[*tuple[Any, ...]] | Insert | Update | Delete,
        *,
        writes: bool = False,
    ) -> None:
        self.statement = statement
        # A SELECT whose CTEs write says so (``writes=True``).
        self.writes = writes or not isinstance(statement, Select)
        self._compiled: tuple[str, tuple[str, ...], dict[str, Any]] | None = None

    def _postgresql(self, dialect: Dialect) -> tuple[str, tuple[str, ...], dict[str, Any]]:
        if self._compiled is None:
            compiled = self.statement.compile(dialect=dialect)
            # Values the statement carries itself (a literal such as a lock's key).
            fixed = {name: value for name, value in compiled.params.items() if value is not None}
            self._compiled = compiled.string, tuple(compiled.positiontup or ()), fixed
        return self._compiled

    async def rows(
        self, reader: AsyncSession | AsyncConnection | DirectConnection, params: dict[str, Any]
    ) -> Sequence[Any]:
        if isinstance(reader, DirectConnection):
            if self.writes:
                raise RuntimeError("a write on a pooled connection commits alone (commits_alone)")
            return await self._on_pool(reader, params)
        if isinstance(reader, AsyncConnection):
            dialect: Dialect | None = reader.dialect
        else:
            dialect = None if reader.bind is None else reader.bind.dialect
        if dialect is None or dialect.name != "postgresql":
            mappings: Sequence[Any] = (
                (await reader.execute(self.statement, params)).mappings().all()
            )
            return mappings
        connection = reader if isinstance(reader, AsyncConnection) else await reader.connection()
        return await self._direct(connection, params, begin=self.writes)

    async def commits_alone(
        self, connection: AsyncConnection | DirectConnection, params: dict[str, Any]
    ) -> Sequence[Any]:
        """Run a write outside any transaction block, as a transaction of its own (PostgreSQL).

        The statement commits as it ends: one round trip, and its row locks
        held only while it runs. ``connection`` must not be in a transaction
        (a ``DirectConnection``'s never is).
        """
        if isinstance(connection, DirectConnection):
            return await self._on_pool(connection, params)
        assert connection.dialect.name == "postgresql", "other databases write in a transaction"
        return await self._direct(connection, params, begin=False, alone=True)

    async def _direct(
        self,
        connection: AsyncConnection,
        params: dict[str, Any],
        *,
        begin: bool,
        alone: bool = False,
    ) -> Sequence[Any]:
        sql, names, fixed = self._postgresql(connection.dialect)
        args = tuple(params[name] if name in params else fixed[name] for name in names)
        sync = connection.sync_connection
        assert sync is not None
        # The engine's listeners see the statement as if SQLAlchemy ran it
        # (statement counts, traces' SQL spans): with no cursor, and a context
        # that only holds what a listener keeps between before and after.
        context = DirectContext()
        sync.dispatch.before_cursor_execute(sync, None, sql, args, context, False)
        try:
            raw = (
                # The pooled connection this one holds, when it holds one:
                # no I/O, so no trip through SQLAlchemy's greenlet bridge.
                sync.connection
                if not (sync.closed or sync.invalidated)
                else await connection.get_raw_connection()
            )
            if begin:
                await _begun(raw.dbapi_connection)
            elif alone and raw.dbapi_connection._transaction is not None:  # type: ignore[union-attr]
                raise RuntimeError("a statement meant to commit alone, sent in a transaction")
            records: list[Any] = await raw.driver_connection.fetch(sql, *args)  # type: ignore[union-attr]
        finally:
            # On failure too: a listener's span must end.
            sync.dispatch.after_cursor_execute(sync, None, sql, args, context, False)
        return records

    async def _on_pool(self, reader: DirectConnection, params: dict[str, Any]) -> Sequence[Any]:
        """The statement on a connection of the direct pool (``fast.direct``), outside any
        transaction: a read, or a write that commits as it ends."""
        engine = reader.engine
        sql, names, fixed = self._postgresql(engine.dialect)
        args = tuple(params[name] if name in params else fixed[name] for name in names)
        # The engine itself stands for the connection listeners are given:
        # ours read only the statement and the context, tracing the engine's URL.
        context = DirectContext()
        engine.dispatch.before_cursor_execute(engine, None, sql, args, context, False)
        try:
            records: list[Any] = await reader.connection.fetch(sql, *args)
        finally:
            engine.dispatch.after_cursor_execute(engine, None, sql, args, context, False)
        return records


async def _begun(adapted: Any) -> None:
    """Begin the session's transaction on the driver, as SQLAlchemy's cursor would.

    SQLAlchemy's asyncpg adapter sends BEGIN lazily, with the first statement
    it runs itself. A write sent driver-direct before any such statement would
    otherwise run in autocommit and survive the unit of work's rollback.
    """
    if adapted._transaction is None:
        await adapted._start_transaction()


class DirectContext:
    """The execution context given to listeners for a driver-direct read.

    SQLAlchemy's own has much more; listeners of this app read only its
    execution options, and tracing keeps its span on it.
    """

    execution_options: Mapping[str, Any] = immutabledict()
