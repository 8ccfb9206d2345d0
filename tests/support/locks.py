"""The database from the side: a plain connection, and whether app connections wait on a lock.

PostgreSQL through asyncpg, MariaDB through asyncmy.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg


def dsn(url: str) -> str:
    """An SQLAlchemy URL of the test server as asyncpg takes it."""
    return url.replace("postgresql+asyncpg", "postgresql").replace("ssl=", "sslmode=")


async def waiting_backends(holder: asyncpg.Connection) -> list[int]:
    """Process ids of the app's connections that wait for the lock."""
    async with asyncio.timeout(5):
        while True:
            # The holder is inside its transaction, and PostgreSQL reads the
            # list of backends once per transaction: without this, a pool
            # connection opened after the first poll is never seen.
            await holder.execute("SELECT pg_stat_clear_snapshot()")
            rows = await holder.fetch(
                "SELECT pid FROM pg_stat_activity"
                " WHERE application_name = 'asyncpress' AND wait_event_type = 'Lock'"
            )
            if rows:
                return [int(row["pid"]) for row in rows]
            await asyncio.sleep(0.02)


async def mariadb_lock_waits(holder: Any) -> int:
    """How many other connections have a statement in flight (MariaDB).

    Called while ``holder`` (an asyncmy connection) keeps a row locked: a
    statement that stays in flight is waiting on it. Not INNODB_TRX: a
    unique-key lookup waits in the optimizer ("Statistics") before its
    transaction shows there.
    """
    async with asyncio.timeout(5):
        while True:
            async with holder.cursor() as cursor:
                await cursor.execute(
                    "SELECT COUNT(*) FROM information_schema.PROCESSLIST"
                    " WHERE ID <> CONNECTION_ID() AND COMMAND = 'Query'"
                    " AND USER <> 'system user'"
                )
                (waiting,) = await cursor.fetchone()
            if waiting:
                return int(waiting)
            await asyncio.sleep(0.02)
