"""A write whose row refers to one deleted meanwhile (a foreign key that failed)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from asyncpress.core.db_faults import chain, mysql_code

# PostgreSQL's foreign_key_violation; asyncpg's errors and SQLAlchemy's
# wrappers of them both carry it as ``sqlstate``.
_FOREIGN_KEY_VIOLATION = "23503"
# MySQL's "cannot add or update a child row: a foreign key constraint fails".
_MYSQL_NO_REFERENCED_ROW = frozenset({1452, 1216})
# MySQL's duplicate entry for a unique key.
_MYSQL_DUPLICATE_KEY = 1062


def _refers_to_a_missing_row(exc: BaseException) -> bool:
    for cause in chain(exc):
        if getattr(cause, "sqlstate", None) == _FOREIGN_KEY_VIOLATION:
            return True
        if isinstance(cause, sqlite3.IntegrityError) and "FOREIGN KEY" in str(cause):
            return True
        if mysql_code(cause) in _MYSQL_NO_REFERENCED_ROW:
            return True
    return False


def duplicate_key(exc: BaseException) -> bool:
    """Whether ``exc`` is MySQL's duplicate-key error (for MySQL-only paths)."""
    return any(mysql_code(cause) == _MYSQL_DUPLICATE_KEY for cause in chain(exc))


@contextmanager
def gone_as(error: Exception) -> Iterator[None]:
    """Raise ``error`` instead of a failed foreign key in the block.

    A write reads the row it refers to, then writes; a row deleted by another
    client in between fails the reference, and the client should hear what
    it would have heard a moment later (a 404), not a 500.
    """
    try:
        yield
    except Exception as exc:
        if _refers_to_a_missing_row(exc):
            raise error from exc
        raise
