"""Database faults a client did not cause: 503 with ``Retry-After``, never a 500.

- the pool had no connection free within ``DB_POOL_TIMEOUT_S`` (the
  database is slow or stalled, or the process is overloaded);
- the connection was lost mid-request (a restart, a failover, a killed
  backend) or a new one could not be opened;
- the server is shutting down or refuses connections for now;
- SQLite's write lock was not granted within its busy timeout;
- the database chose the transaction as a deadlock victim (or, on MySQL,
  a lock wait timed out), after the use case's own retry did not get through.

A statement cut off by ``DB_STATEMENT_TIMEOUT_MS`` is the database's own
deadline: 504, like the request deadline. Anything else stays a 500: a bug.
"""

from __future__ import annotations

import sqlite3

import asyncmy.errors
import asyncpg
from sqlalchemy import exc as sa_exc

RETRY_AFTER_S = 1

_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,  # 57P: shutdown, cannot connect now
    asyncpg.exceptions.TooManyConnectionsError,
    ConnectionError,
)

# MySQL/MariaDB error codes (the first argument of asyncmy's errors).
# The connection is gone or cannot be made: the client's 2003 (cannot
# connect), 2006 (server has gone away), 2013 (lost during a query), 2055;
# the server's 1040 (too many connections), 1053 (shutting down), 1927
# (MariaDB: connection killed), 4031 (MySQL: closed for inactivity).
_MYSQL_LOST = frozenset({2003, 2006, 2013, 2055, 1040, 1053, 1927, 4031})
# 1213: chosen as a deadlock victim; 1205: a lock not granted within
# innodb_lock_wait_timeout. Both undo the statement or transaction: the
# client may try again.
MYSQL_RETRYABLE = frozenset({1213, 1205})
# A statement cut off by its deadline: MariaDB's max_statement_time (1969).
_MYSQL_TIMED_OUT = frozenset({1969})


# PostgreSQL's deadlock_detected.
_DEADLOCK_SQLSTATE = "40P01"


def deadlocked(exc: BaseException) -> bool:
    """Whether the database chose this transaction as a deadlock victim (rolled back)."""
    return any(
        mysql_code(cause) == 1213 or getattr(cause, "sqlstate", None) == _DEADLOCK_SQLSTATE
        for cause in chain(exc)
    )


def mysql_code(cause: BaseException) -> int | None:
    """The MySQL error code of an asyncmy error, else None."""
    if isinstance(cause, asyncmy.errors.MySQLError) and cause.args:
        code = cause.args[0]
        return code if isinstance(code, int) else None
    return None


# What the app's handlers are registered for. Not OSError: TimeoutError is
# one, and an app's own timeout is a bug to see (500), not a database fault.
FAULTS: tuple[type[Exception], ...] = (
    sa_exc.SQLAlchemyError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncmy.errors.MySQLError,
    ConnectionError,
)


def chain(exc: BaseException) -> list[BaseException]:
    """``exc``, the driver error SQLAlchemy wraps, and their causes."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo and len(seen) < 10:
        current = todo.pop()
        if current is None or current in seen:
            continue
        seen.append(current)
        todo.extend([current.__cause__, current.__context__, getattr(current, "orig", None)])
    return seen


def _is_lost(cause: BaseException) -> bool:
    if isinstance(cause, _CONNECTION_ERRORS):
        return True
    if isinstance(cause, asyncpg.InterfaceError):
        return "closed" in str(cause)
    if getattr(cause, "sqlstate", None) == _DEADLOCK_SQLSTATE:
        return True  # the victim's transaction was rolled back: the client may try again
    code = mysql_code(cause)
    if code is not None:
        return code in _MYSQL_LOST or code in MYSQL_RETRYABLE
    return isinstance(cause, sqlite3.OperationalError) and "locked" in str(cause)


def classify(exc: BaseException) -> int | None:
    """503 or 504 for a database fault, None for anything else."""
    if isinstance(exc, sa_exc.TimeoutError):  # no pooled connection in time
        return 503
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return 503
    if not isinstance(exc, FAULTS):
        return None
    causes = chain(exc)
    if any(isinstance(c, asyncpg.exceptions.QueryCanceledError) for c in causes):
        return 504
    if any(mysql_code(c) in _MYSQL_TIMED_OUT for c in causes):
        return 504
    return 503 if any(_is_lost(c) for c in causes) else None
