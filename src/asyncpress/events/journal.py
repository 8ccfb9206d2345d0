"""The durable event journal: written in the causing transaction, read by every worker.

Ids are handed out in commit order, so a reader that has seen id N has seen
everything below N that will ever exist. SQLite gets this for free (one
writer at a time); on PostgreSQL a transaction-scoped advisory lock, taken
by the insert itself and released by the commit that follows it,
serialises the few microseconds between taking an id and committing it. On
MySQL/MariaDB the lock is that of ``event_order``'s one row, taken by an
upsert just before the insert (a second round trip) and released the same way.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from fastapi.sse import format_sse_event
from sqlalchemy import (
    CTE,
    ColumnElement,
    Insert,
    Select,
    String,
    bindparam,
    cast,
    delete,
    func,
    insert,
    literal,
    select,
    true,
)
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.ext.asyncio import AsyncSession

from asyncpress.core.db.base import utcnow
from asyncpress.core.db.bulk import table_of
from asyncpress.core.db.engine import dialect_of
from asyncpress.core.logs import current_request_id
from asyncpress.core.schemas import iso_millis
from asyncpress.core.uow import UnitOfWork
from asyncpress.events.models import Event, EventOrder
from asyncpress.fast.rows import Prepared
from asyncpress.fast.wire import http_chunk, ws_text_frame

# Any constant will do; it only has to be this application's own.
ADVISORY_LOCK_KEY = 0x61737970  # "asyp"


def compact_json(value: Any) -> str:
    """JSON without spaces: how events are stored and sent."""
    return json.dumps(value, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    id: int
    type: str
    time: str
    channels: frozenset[str]
    data: dict[str, Any]
    # Serialised once per process, however many connections send it.
    wire_text: str = field(init=False, repr=False, compare=False)
    document_text: str = field(init=False, repr=False, compare=False)
    sse_frame: bytes = field(init=False, repr=False, compare=False)
    # The same, framed for writing straight to a socket (asyncpress.fast.wire).
    ws_frame: bytes = field(init=False, repr=False, compare=False)
    sse_chunk: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        wire = {"type": "event", "id": self.id, "event": self.type, "time": self.time}
        document = {"id": self.id, "type": self.type, "time": self.time}
        object.__setattr__(self, "wire_text", compact_json({**wire, "data": self.data}))
        object.__setattr__(self, "document_text", compact_json({**document, "data": self.data}))
        frame = format_sse_event(data_str=self.document_text, event=self.type, id=str(self.id))
        object.__setattr__(self, "sse_frame", frame)
        object.__setattr__(self, "ws_frame", ws_text_frame(self.wire_text.encode()))
        object.__setattr__(self, "sse_chunk", http_chunk(frame))

    def feed_author(self) -> int | None:
        """The author whose followers' ``feed`` receives this event, if any."""
        for channel in self.channels:
            if channel.startswith("feed:"):
                return int(channel[5:])
        return None


def channels_text(channels: Iterable[str]) -> str:
    """How an event's channels are stored: each once, sorted, space-separated."""
    return " ".join(sorted(set(channels)))


async def append(
    uow: UnitOfWork, event_type: str, data: dict[str, Any], channels: Iterable[str]
) -> None:
    """Append an event in the unit of work's transaction; its commit wakes the hubs.

    Call it last, just before the commit, so the lock is held for as short a
    time as possible.
    """
    session = uow.session
    row = {
        "type": event_type,
        "created_at": utcnow(),
        "channels": channels_text(channels),
        "data": compact_json(data),
        "request_id": current_request_id(),
    }
    dialect = dialect_of(session)
    if dialect == "postgresql":
        await _LOCKED_INSERT.rows(session, row)
    else:
        if dialect == "mysql":
            await session.execute(_ORDER_LOCK)
        await session.execute(insert(table_of(Event)), row)
    uow.wake_streams()


# The upsert whose row lock, held to the commit, orders MySQL's event ids.
_ORDER_LOCK = (
    mysql_insert(table_of(EventOrder))
    .values(id=1, appends=1)
    .on_duplicate_key_update(appends=table_of(EventOrder).c.appends + 1)
)


# The columns of an event row that its writer gives (the id is drawn by the insert).
ROW_COLUMNS = ("type", "created_at", "channels", "data", "request_id")


def logged_from(rows: Select[*tuple[Any, ...]], name: str = "logged") -> CTE:
    """The events ``rows`` selects, appended by a CTE of a bigger statement (PostgreSQL).

    ``rows`` names its columns as ``ROW_COLUMNS``. The insert takes the
    log's lock before it draws an id, as ``append`` does; the CTE returns
    the ids. For a write done in one statement (``OneStatement``), which
    then declares ``wake_streams`` itself.
    """
    lock = _log_lock(f"{name}_lock")
    given = rows.subquery(f"{name}_rows")
    table = table_of(Event)
    values = select(*(given.c[c] for c in ROW_COLUMNS)).select_from(lock).join(given, true())
    columns = [table.c[c] for c in ROW_COLUMNS]
    return insert(table).from_select(columns, values).returning(table.c.id).cte(name)


def slot(key: str) -> str:
    """Where a number only the writing statement knows goes in a serialised payload.

    Serialise the payload with ``key``'s value set to -1 (``compact_json``),
    then fill it in with :func:`filled`. The slot cannot be mistaken for
    anything else in the payload as long as ``key`` is a key there once:
    JSON escapes every quote inside a string, so ``"key":`` appears
    unescaped only as a key.
    """
    return f'"{key}":-1'


def filled(data: ColumnElement[str], key: str, value: ColumnElement[Any]) -> ColumnElement[str]:
    """SQL: the serialised payload ``data`` with ``slot(key)`` holding ``value``."""
    number = literal(f'"{key}":') + cast(value, String)
    return func.replace(data, slot(key), number)


def holds_slot_once(text: str, key: str) -> bool:
    return text.count(slot(key)) == 1


def _log_lock(name: str) -> CTE:
    """PostgreSQL's lock on the log, held to the commit, as a CTE to select the rows from."""
    return select(func.pg_advisory_xact_lock(ADVISORY_LOCK_KEY).label("held")).cte(name)


def _locked_insert() -> Insert:
    """The lock and the insert in one statement (one round trip).

    The row is selected from the lock's CTE, so PostgreSQL takes the lock
    before it draws the row's id.
    """
    lock = _log_lock("event_lock")
    table = table_of(Event)
    columns = [table.c[name] for name in ROW_COLUMNS]
    values = select(*(bindparam(c.name, type_=c.type) for c in columns)).select_from(lock)
    return insert(table).from_select(columns, values)


# Driver-direct: every write that publishes runs it.
_LOCKED_INSERT = Prepared(_locked_insert())


def _loaded(row: Event) -> LoggedEvent:
    return LoggedEvent(
        id=row.id,
        type=row.type,
        time=iso_millis(row.created_at),
        channels=frozenset(row.channels.split()),
        data=json.loads(row.data),
    )


async def after(session: AsyncSession, last_id: int, limit: int) -> list[LoggedEvent]:
    """Events with an id above ``last_id``, oldest first."""
    rows = await session.scalars(
        select(Event).where(Event.id > last_id).order_by(Event.id).limit(limit)
    )
    return [_loaded(row) for row in rows]


async def bounds(session: AsyncSession) -> tuple[int | None, int]:
    """The oldest id still in the log (None when empty) and the newest (0 when empty)."""
    oldest, newest = (await session.execute(select(func.min(Event.id), func.max(Event.id)))).one()
    return oldest, newest or 0


async def prune(session: AsyncSession, keep_count: int, keep_for: timedelta) -> int:
    """Delete events that are both older than ``keep_for`` and outside the newest ``keep_count``.

    Returns the number deleted. Commits.
    """
    _, newest = await bounds(session)
    cutoff_time: datetime = utcnow() - keep_for
    result = await session.execute(
        delete(Event).where(Event.id <= newest - keep_count, Event.created_at < cutoff_time)
    )
    await session.commit()
    return int(getattr(result, "rowcount", 0) or 0)
