"""Multi-row inserts and upserts in the session's dialect (seeding, import, previews)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncSession


def insert_ignoring_conflicts(session: AsyncSession, table: Any) -> Any:
    """``INSERT … ON CONFLICT DO NOTHING`` in the session's dialect."""
    bind = session.bind
    if bind is not None and bind.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert  # noqa: PLC0415

        return pg_insert(table).on_conflict_do_nothing()
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert  # noqa: PLC0415

    return sqlite_insert(table).on_conflict_do_nothing()


INSERT_BATCH = 1000


def table_of(model: type[Any]) -> Table:
    """A mapped class's Table, typed as one."""
    table: Table = model.__table__
    return table


Progress = Callable[[str, int, int], None]


def no_progress(_table: str, _done: int, _total: int) -> None:
    return None


async def insert_rows(
    session: AsyncSession,
    table: Table,
    rows: Sequence[dict[str, Any]],
    progress: Progress = no_progress,
    *,
    returning_ids: bool = False,
    ignore_conflicts: bool = False,
) -> list[int]:
    """Multi-row INSERTs of up to ``INSERT_BATCH`` rows each.

    With ``returning_ids`` the new ids come back in the order of ``rows``.
    """
    ids: list[int] = []
    for start in range(0, len(rows), INSERT_BATCH):
        chunk = rows[start : start + INSERT_BATCH]
        if returning_ids:
            stmt = insert(table).returning(table.c.id, sort_by_parameter_order=True)
            ids.extend((await session.execute(stmt, chunk)).scalars().all())
        elif ignore_conflicts:
            await session.execute(insert_ignoring_conflicts(session, table), chunk)
        else:
            await session.execute(insert(table), chunk)
        progress(table.name, start + len(chunk), len(rows))
    return ids


async def upsert(
    session: AsyncSession, model: type[Any], rows: Sequence[dict[str, Any]], key: str
) -> None:
    """INSERT … ON CONFLICT (key) DO UPDATE, in the session's dialect."""
    from sqlalchemy.dialects import postgresql, sqlite  # noqa: PLC0415

    bind = session.bind
    on_postgres = bind is not None and bind.dialect.name == "postgresql"
    stmt: Any = postgresql.insert(model) if on_postgres else sqlite.insert(model)
    columns = [c for c in rows[0] if c != key]
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[key], set_={c: getattr(stmt.excluded, c) for c in columns}
        ),
        list(rows),
    )
