"""Outbox queries: enqueue in the cause's transaction, claim, record outcomes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    CTE,
    JSON,
    Boolean,
    ColumnElement,
    Select,
    String,
    bindparam,
    case,
    cast,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from asyncpress.core.db.base import utcnow
from asyncpress.core.db.bulk import insert_ignoring_conflicts, table_of
from asyncpress.core.db.engine import dialect_of
from asyncpress.core.logs import current_request_id
from asyncpress.notifications.models import DEAD, PENDING, SENDING, SENT, OutboxMessage


@dataclass(frozen=True, slots=True)
class Claimed:
    """What a delivery needs: plain values, no ORM object."""

    id: int
    idempotency_key: str
    kind: str
    to_email: str
    payload: dict[str, Any]
    attempts: int


async def enqueue(
    session: AsyncSession, key: str, kind: str, to_email: str, payload: dict[str, Any]
) -> None:
    """Add a message unless one with the same key exists (then nothing is sent twice)."""
    # On the table: the mapped class would take the ORM's slower bulk-insert path.
    stmt = insert_ignoring_conflicts(session, table_of(OutboxMessage)).values(
        idempotency_key=key,
        kind=kind,
        to_email=to_email,
        payload=payload,
        status=PENDING,
        attempts=0,
        next_attempt_at=utcnow(),
        request_id=current_request_id(),
    )
    await session.execute(stmt)


# The columns of an outbox row that its writer gives.
ROW_COLUMNS = ("idempotency_key", "kind", "to_email", "payload")


def bound_message(key: ColumnElement[str] | None = None) -> Select[*tuple[Any, ...]]:
    """One message given as parameters (``service.message_params``), for ``enqueued_from``.

    It is selected only when the ``notify`` parameter is true. ``key``: the
    idempotency key made in SQL, in place of the ``outbox_key`` parameter.
    """
    return select(
        (bindparam("outbox_key", type_=String) if key is None else key).label("idempotency_key"),
        bindparam("outbox_kind", type_=String).label("kind"),
        bindparam("outbox_to", type_=String).label("to_email"),
        cast(bindparam("outbox_payload", type_=String), JSON).label("payload"),
    ).where(bindparam("notify", type_=Boolean))


def enqueued_from(rows: Select[*tuple[Any, ...]], name: str = "enqueued") -> CTE:
    """The messages ``rows`` selects, queued by a CTE of a bigger statement (PostgreSQL).

    ``rows`` names its columns as ``ROW_COLUMNS``; a key already queued is
    skipped, as ``enqueue`` does. Binds ``outbox_now`` and ``request_id``.
    The CTE returns the new rows' ids: a write in one statement
    (``OneStatement``) kicks the outbox when there are any.
    """
    given = rows.subquery(f"{name}_rows")
    table = table_of(OutboxMessage)
    now = bindparam("outbox_now", type_=table.c.next_attempt_at.type)
    values = select(
        *(given.c[c] for c in ROW_COLUMNS),
        literal(PENDING),
        literal(0),
        now,
        now,
        bindparam("request_id", type_=table.c.request_id.type),
    )
    # Every column with a default is named: a default SQLAlchemy adds to an
    # INSERT … SELECT is evaluated once, when the statement is built.
    columns = [
        *(table.c[c] for c in ROW_COLUMNS),
        table.c.status,
        table.c.attempts,
        table.c.next_attempt_at,
        table.c.created_at,
        table.c.request_id,
    ]
    statement = pg_insert(table).from_select(columns, values).on_conflict_do_nothing()
    return statement.returning(table.c.id).cte(name)


async def claim(
    session: AsyncSession, worker: str, now: datetime, lease: timedelta, limit: int
) -> list[Claimed]:
    """Take up to ``limit`` due messages for ``worker`` until ``now + lease``.

    Due: pending and past their next attempt, or claimed by a worker whose
    lease ran out (it died mid-delivery). On PostgreSQL the rows are picked
    with ``FOR UPDATE SKIP LOCKED``, so concurrent workers take disjoint sets;
    on SQLite the caller's write transaction serialises claims. MariaDB 10.6+
    skips locked rows the same way.
    """
    due = (
        select(OutboxMessage.id)
        .where(
            or_(
                (OutboxMessage.status == PENDING) & (OutboxMessage.next_attempt_at <= now),
                (OutboxMessage.status == SENDING) & (OutboxMessage.locked_until < now),
            )
        )
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = list((await session.execute(due)).scalars().all())
    if not ids:
        return []
    stmt = (
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(ids))
        .values(
            status=SENDING,
            attempts=OutboxMessage.attempts + 1,
            locked_until=now + lease,
            locked_by=worker,
        )
    )
    claimed = (
        OutboxMessage.id,
        OutboxMessage.idempotency_key,
        OutboxMessage.kind,
        OutboxMessage.to_email,
        OutboxMessage.payload,
        OutboxMessage.attempts,
    )
    if dialect_of(session) == "mysql":
        # No UPDATE … RETURNING: the rows are read back under the locks the
        # SELECT … FOR UPDATE took, so they are what this update left.
        await session.execute(stmt)
        rows = (await session.execute(select(*claimed).where(OutboxMessage.id.in_(ids)))).all()
    else:
        rows = (await session.execute(stmt.returning(*claimed))).all()
    return sorted((Claimed(*row) for row in rows), key=lambda c: c.id)


async def mark_sent(session: AsyncSession, ids: list[int], worker: str, now: datetime) -> None:
    if ids:
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(ids), OutboxMessage.locked_by == worker)
            .values(status=SENT, sent_at=now, locked_until=None, last_error=None)
        )


async def mark_failed(
    session: AsyncSession, message_id: int, worker: str, error: str, retry_at: datetime | None
) -> None:
    """Schedule another attempt at ``retry_at``, or dead-letter when it is None."""
    values: dict[str, Any] = {"last_error": error[:2000], "locked_until": None}
    if retry_at is None:
        values["status"] = DEAD
    else:
        values.update(status=PENDING, next_attempt_at=retry_at)
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id, OutboxMessage.locked_by == worker)
        .values(**values)
    )


async def dead_letters(session: AsyncSession, limit: int = 100) -> list[OutboxMessage]:
    stmt = (
        select(OutboxMessage)
        .where(OutboxMessage.status == DEAD)
        .order_by(OutboxMessage.id)
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars().all())


async def requeue_dead(session: AsyncSession, now: datetime, message_id: int | None) -> int:
    stmt = update(OutboxMessage).where(OutboxMessage.status == DEAD)
    if message_id is not None:
        stmt = stmt.where(OutboxMessage.id == message_id)
    result = await session.execute(
        stmt.values(status=PENDING, attempts=0, next_attempt_at=now, locked_by=None)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def stats(session: AsyncSession) -> dict[str, int]:
    """Outbox counts by status, plus retried messages and failed attempts."""
    grouped = select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
    by_status = {row[0]: row[1] for row in (await session.execute(grouped)).all()}
    failed_attempts = func.sum(
        case(
            (OutboxMessage.status == PENDING, OutboxMessage.attempts),
            (OutboxMessage.status == DEAD, OutboxMessage.attempts),
            else_=OutboxMessage.attempts - 1,
        )
    )
    retried = func.sum(case((OutboxMessage.attempts > 1, 1), else_=0))
    failed, retried_count = (await session.execute(select(failed_attempts, retried))).one()
    out = {status: int(by_status.get(status, 0)) for status in (PENDING, SENDING, SENT, DEAD)}
    out["depth"] = out[PENDING] + out[SENDING]
    out["retried"] = int(retried_count or 0)
    out["failed_attempts"] = max(int(failed or 0), 0)
    return out
