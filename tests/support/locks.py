"""PostgreSQL from the side: a plain asyncpg DSN, and which app connections wait on a lock."""

from __future__ import annotations

import asyncio

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
