"""Multi-row inserts and upserts in the session's dialect (seeding, import, previews)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import CTE, ScalarSelect, Table, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from asyncpress.core.db.engine import dialect_of


def insert_ignoring_conflicts(session: AsyncSession, table: Any) -> Any:
    """``INSERT … ON CONFLICT DO NOTHING`` in the session's dialect.

    MySQL's form is ``ON DUPLICATE KEY UPDATE key = key``: a duplicate changes
    nothing, and unlike ``INSERT IGNORE`` a failed foreign key or a value too
    long is still an error. Its row count does not tell an insert from a
    duplicate (SQLAlchemy connects with CLIENT_FOUND_ROWS), so a caller that
    needs to know uses a plain INSERT there.
    """
    dialect = dialect_of(session)
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert  # noqa: PLC0415

        return pg_insert(table).on_conflict_do_nothing()
    if dialect == "mysql":
        from sqlalchemy.dialects.mysql import insert as mysql_insert  # noqa: PLC0415

        key = next(iter(table_of_any(table).primary_key.columns))
        return mysql_insert(table).on_duplicate_key_update({key.name: key})
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert  # noqa: PLC0415

    return sqlite_insert(table).on_conflict_do_nothing()


def table_of_any(target: Any) -> Table:
    """The Table of a Table or of a mapped class."""
    return target if isinstance(target, Table) else table_of(target)


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
    On MySQL a statement must also fit the server's ``max_allowed_packet``
    (16 MB by default on MariaDB): batches are cut to half of it too.
    """
    budget: int | None = None
    if dialect_of(session) == "mysql":
        packet = (await session.execute(text("SELECT @@max_allowed_packet"))).scalar_one()
        budget = int(packet) // 2
    ids: list[int] = []
    done = 0
    for chunk in batches(rows, INSERT_BATCH, budget):
        if returning_ids:
            stmt = insert(table).returning(table.c.id, sort_by_parameter_order=True)
            ids.extend((await session.execute(stmt, chunk)).scalars().all())
        elif ignore_conflicts:
            await session.execute(insert_ignoring_conflicts(session, table), chunk)
        else:
            await session.execute(insert(table), chunk)
        done += len(chunk)
        progress(table.name, done, len(rows))
    return ids


def _size(row: dict[str, Any]) -> int:
    """An upper bound of the row's bytes in a statement: 4 per character (utf8mb4)."""
    return 16 + sum(4 * len(v) if isinstance(v, str) else 32 for v in row.values())


def batches(
    rows: Sequence[dict[str, Any]], most: int, budget: int | None
) -> list[Sequence[dict[str, Any]]]:
    """``rows`` in order, cut into runs of at most ``most`` rows and ``budget`` bytes.

    A row larger than the budget alone goes in a batch of its own (the
    server then says whether it fits).
    """
    out: list[Sequence[dict[str, Any]]] = []
    start, size = 0, 0
    for index, row in enumerate(rows):
        row_size = _size(row) if budget is not None else 0
        full = index - start == most or (budget is not None and size + row_size > budget)
        if full and index > start:
            out.append(rows[start:index])
            start, size = index, 0
        size += row_size
    if start < len(rows):
        out.append(rows[start:])
    return out


async def upsert(
    session: AsyncSession, model: type[Any], rows: Sequence[dict[str, Any]], key: str
) -> None:
    """INSERT … ON CONFLICT (key) DO UPDATE, in the session's dialect."""
    from sqlalchemy.dialects import mysql, postgresql, sqlite  # noqa: PLC0415

    dialect = dialect_of(session)
    columns = [c for c in rows[0] if c != key]
    if dialect == "mysql":
        upserting = mysql.insert(model)
        await session.execute(
            upserting.on_duplicate_key_update({c: getattr(upserting.inserted, c) for c in columns}),
            list(rows),
        )
        return
    stmt: Any = postgresql.insert(model) if dialect == "postgresql" else sqlite.insert(model)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[key], set_={c: getattr(stmt.excluded, c) for c in columns}
        ),
        list(rows),
    )


def rows_written(cte: CTE) -> ScalarSelect[int]:
    """How many rows a CTE that writes wrote, as a column of the statement's SELECT.

    Referring to such a CTE is also what makes SQLAlchemy send it at all.
    """
    return select(func.count()).select_from(cte).scalar_subquery()
