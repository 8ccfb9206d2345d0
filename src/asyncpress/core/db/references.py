"""A write whose row refers to one deleted meanwhile (a foreign key that failed)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from asyncpress.core.db_faults import chain

# PostgreSQL's foreign_key_violation; asyncpg's errors and SQLAlchemy's
# wrappers of them both carry it as ``sqlstate``.
_FOREIGN_KEY_VIOLATION = "23503"


def _refers_to_a_missing_row(exc: BaseException) -> bool:
    for cause in chain(exc):
        if getattr(cause, "sqlstate", None) == _FOREIGN_KEY_VIOLATION:
            return True
        if isinstance(cause, sqlite3.IntegrityError) and "FOREIGN KEY" in str(cause):
            return True
    return False


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
