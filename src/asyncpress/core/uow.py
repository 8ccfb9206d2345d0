"""One write, its single commit, and what that commit sets in motion.

A write use case opens a unit of work (:meth:`Database.write`), does its
work in the unit's session, declares what must follow the commit (cache
entries to retire, live streams to wake, the outbox to kick, links to
preview) and commits once. The follow-ups are carried out by
:meth:`UnitOfWork.commit`, right after the commit and only if it succeeded:
a rollback, an exception or leaving the ``async with`` without committing
drops them with the transaction.

Who carries them out is given to the :class:`Database` once, in the app's
lifespan (``asyncpress.app.after_commit``); the CLI gives one that does
nothing, since no server of its own has caches or streams to tell.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from asyncpress.core.db.engine import begin_write
from asyncpress.fast.direct import DirectConnection, DirectPool
from asyncpress.fast.rows import Prepared


@dataclass(slots=True)
class FollowUps:
    """What a committed write asks for, declared where the write happens."""

    retire: set[str] = field(default_factory=set)  # cache keys
    wake_streams: bool = False  # the event log has new entries
    kick_outbox: bool = False  # the outbox has new messages
    preview: list[str] = field(default_factory=list)  # texts whose links to preview

    def __bool__(self) -> bool:
        return bool(self.retire or self.wake_streams or self.kick_outbox or self.preview)


class AfterCommit(Protocol):
    """Carries out the follow-ups of a unit of work that committed."""

    async def run(self, follow_ups: FollowUps) -> None: ...


class NothingAfterCommit:
    """For processes without caches, streams or an outbox of their own (the CLI)."""

    async def run(self, follow_ups: FollowUps) -> None:
        return None


class _Declares:
    """What a write declares for after its commit."""

    __slots__ = ("_after", "_follow_ups")

    def __init__(self, after: AfterCommit) -> None:
        self._after = after
        self._follow_ups = FollowUps()

    def retire(self, *keys: str) -> None:
        """Delete these cache keys once the write is visible."""
        self._follow_ups.retire.update(keys)

    def wake_streams(self) -> None:
        """Tell every process's hub that the event log grew."""
        self._follow_ups.wake_streams = True

    def kick_outbox(self) -> None:
        """Start sending the messages this write queued, without waiting for the sweep."""
        self._follow_ups.kick_outbox = True

    def preview_links_in(self, text: str) -> None:
        """Fetch previews of the links in ``text`` in the background, so readers find them."""
        if text:
            self._follow_ups.preview.append(text)

    async def _carry_out(self) -> None:
        follow_ups, self._follow_ups = self._follow_ups, FollowUps()
        if follow_ups:
            await self._after.run(follow_ups)


class UnitOfWork(_Declares):
    """A write transaction and the follow-ups its commit will carry out."""

    __slots__ = ("session",)

    def __init__(self, session: AsyncSession, after: AfterCommit) -> None:
        super().__init__(after)
        self.session = session

    async def commit(self) -> None:
        """Commit once, then carry out what the write declared."""
        await self.session.commit()
        await self._carry_out()

    async def rollback(self) -> None:
        """Undo the transaction; what it declared is dropped with it."""
        await self.session.rollback()
        self._follow_ups = FollowUps()


class OneStatement(_Declares):
    """A write that is one statement, which commits as it ends.

    PostgreSQL runs a statement sent outside a transaction block as a
    transaction of its own: one round trip instead of BEGIN, the statement
    and COMMIT, and the row locks it takes are held only while it runs,
    never across the round trips to the app and back. A write that can be
    said in one statement (CTEs that write) is done this way on PostgreSQL,
    where the rows a popular article's writes all change (its count) would
    otherwise stay locked through each writer's remaining round trips.
    """

    __slots__ = ("connection", "done", "sent")

    def __init__(self, connection: AsyncConnection | DirectConnection, after: AfterCommit) -> None:
        super().__init__(after)
        self.connection = connection
        self.sent = False  # the write committed
        self.done = False  # its follow-ups were carried out

    async def send(self, statement: Prepared, params: dict[str, Any]) -> Sequence[Any]:
        """Send the write, which commits as it ends.

        A read before it may have begun a transaction on the connection
        (SQLAlchemy begins one with its first statement); it wrote nothing,
        and is ended first, so that the write is a transaction of its own.
        """
        if self.sent:
            raise RuntimeError("one statement per unit of work")
        if isinstance(self.connection, AsyncConnection) and self.connection.in_transaction():
            await self.connection.rollback()
        rows = await statement.commits_alone(self.connection, params)
        self.sent = True
        return rows

    async def commit(self) -> None:
        """The statement committed itself: carry out what the write declared."""
        self.done = True
        await self._carry_out()


class Database:
    """The engine, its sessions, and units of work that know what follows a commit."""

    def __init__(
        self,
        engine: AsyncEngine,
        sessionmaker: async_sessionmaker[AsyncSession],
        after_commit: AfterCommit,
        direct: DirectPool | None = None,
    ) -> None:
        self.engine = engine
        self.sessionmaker = sessionmaker
        self._after_commit = after_commit
        self.direct = direct

    def session(self) -> AsyncSession:
        """A session for reads (``async with db.session() as session``)."""
        return self.sessionmaker()

    async def close(self) -> None:
        """Close every connection: the direct pool's, then the engine's."""
        try:
            if self.direct is not None:
                await self.direct.close()
        finally:
            await self.engine.dispose()

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncConnection | DirectConnection]:
        """A connection for reads that need no ORM (``async with db.reading() as reader``).

        What a session adds (its transaction's bookkeeping, identity map,
        autobegin) costs more CPU than a one-row read itself. On PostgreSQL
        it is a connection of the direct pool (``fast.direct``), which only
        ``Prepared`` statements use.
        """
        async with self._one_statement_connection() as connection:
            yield connection

    @asynccontextmanager
    async def write_at_once(self) -> AsyncIterator[OneStatement]:
        """A unit of work that is one statement committing itself (PostgreSQL).

        Reads may come first on the same connection; the write is then sent
        with :meth:`OneStatement.send`. Leaving without
        :meth:`OneStatement.commit` drops the follow-ups if nothing was
        written, and carries them out if the write was: it is durable
        whatever the block did next, and its readers must not be served
        what it replaced.
        """
        async with self._one_statement_connection() as connection:
            work = OneStatement(connection, self._after_commit)
            try:
                yield work
            finally:
                if work.sent and not work.done:
                    await work.commit()

    @asynccontextmanager
    async def _one_statement_connection(self) -> AsyncIterator[AsyncConnection | DirectConnection]:
        if self.direct is None:
            async with self.engine.connect() as connection:
                yield connection
            return
        async with self.direct.connection() as raw:
            yield DirectConnection(raw, self.engine.sync_engine)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[UnitOfWork]:
        """A unit of work in a write transaction (``BEGIN IMMEDIATE`` on SQLite).

        Leaving it without :meth:`UnitOfWork.commit` rolls the transaction
        back and drops its follow-ups.
        """
        async with self.sessionmaker() as session:
            await begin_write(session)
            yield UnitOfWork(session, self._after_commit)
