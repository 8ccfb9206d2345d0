"""Connections of their own for one-statement work on PostgreSQL (see README.md beside this file).

The hot reads (an article, its comments, a profile, the tags, the caller)
and the writes done in one statement that commits as it ends (favorites,
follows, comments, a new article: ``core.uow.OneStatement``) checked their
connection out of SQLAlchemy's pool through an ``AsyncConnection``: a
greenlet to check it out, another to return it, and the ``Connection``
object around it, about 50 µs of the loop's CPU per read at 64 requests in
flight (docs/benchmarks.md, sixth round), more than the read itself. They
need nothing of that: each statement runs outside any transaction, and
commits alone if it writes. :class:`DirectPool` hands them asyncpg
connections from asyncpg's own pool instead:

- **First come, first served.** asyncpg's pool lets a newcomer take a
  connection a woken waiter was about to take (an ``asyncio.Queue``), the
  tail ``FairAsyncPool`` removed from the other pool. A FIFO semaphore of
  the pool's size is taken first, so the pool always has a connection free
  for whoever holds a slot.
- **Nothing to reset.** asyncpg resets a returned connection with four
  statements in one round trip (advisory locks, cursors, LISTEN, session
  settings). This work takes none of those (an advisory lock it takes is a
  transaction's, released as its statement commits), so a connection goes
  back as it is.
- **Bounded waiting.** A slot not granted within the pool timeout raises
  SQLAlchemy's own pool ``TimeoutError``: answered 503 like the other pool's.
- Connections the server closed are replaced by asyncpg on checkout; a
  failed connect raises the driver's error (503, ``core.db_faults``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine

# How long closing waits for connections still in use.
CLOSE_GRACE_S = 5.0


async def _as_it_is(_connection: asyncpg.Connection) -> None:
    """A returned connection needs no reset: this work changes nothing in the session."""


class DirectPool:
    def __init__(
        self, engine: AsyncEngine, connect_args: dict[str, Any], size: int, patience_s: float
    ) -> None:
        # What the engine connects with: the same server, credentials and TLS
        # (from its URL), and the same session settings (``connect_args``:
        # the statement timeout, the application name).
        _, self._connect = engine.dialect.create_connect_args(engine.url)
        self._connect.update(connect_args)
        self.size = size
        self.patience_s = patience_s
        self._slots = asyncio.Semaphore(size)
        self._held = 0  # slots taken: connections in use or about to be
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()

    async def _opened(self) -> asyncpg.Pool:
        async with self._opening:
            if self._pool is None:
                # min_size=0: connections are opened as they are needed, so
                # a process starts while the database is down.
                self._pool = await asyncpg.create_pool(
                    min_size=0, max_size=self.size, reset=_as_it_is, **self._connect
                )
        return self._pool

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        try:
            async with asyncio.timeout(self.patience_s):
                await self._slots.acquire()
        except TimeoutError:
            raise sa_exc.TimeoutError(
                f"no direct connection within {self.patience_s:g} s"
            ) from None
        self._held += 1
        try:
            pool = self._pool or await self._opened()
            async with pool.acquire() as connection:
                yield connection
        finally:
            self._held -= 1
            self._slots.release()

    @property
    def in_use(self) -> int:
        return self._held

    async def close(self, grace_s: float = CLOSE_GRACE_S) -> None:
        """Close every connection; one still in use after ``grace_s`` is cut off.

        asyncpg's ``close`` waits for every connection to come back, and a
        request's work left unwinding after its deadline (``ops.deadline``)
        may hold one against a database that stopped answering.
        """
        if self._pool is None:
            return
        try:
            async with asyncio.timeout(grace_s):
                await self._pool.close()
        except TimeoutError:
            self._pool.terminate()


class DirectConnection:
    """A connection of the direct pool, as ``Database.reading`` and ``write_at_once`` hand it out.

    ``Prepared.rows`` (reads) and ``Prepared.commits_alone`` (a write that
    commits as it ends) send their statement to ``connection``; ``engine``
    is the engine whose ``before_cursor_execute`` listeners see it.
    """

    __slots__ = ("connection", "engine")

    def __init__(self, connection: Any, engine: Any) -> None:
        self.connection = connection
        self.engine = engine
