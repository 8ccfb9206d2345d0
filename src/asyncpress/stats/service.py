"""Dashboard figures, each part a query on its own connection, all at once.

The parts run in an ``asyncio.TaskGroup``; every task opens its own session,
because an AsyncSession must never be shared between tasks. The whole answer
is cached for ``STATS_CACHE_S``: figures may be that many seconds old, and no
write has to invalidate them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from asyncpress.core import cache_keys
from asyncpress.core.cache import Cache
from asyncpress.core.uow import Database
from asyncpress.stats.repository import parts


async def _on_own_session(
    sessionmaker: async_sessionmaker[AsyncSession],
    part: Callable[[AsyncSession], Awaitable[Any]],
) -> Any:
    async with sessionmaker() as session:
        return await part(session)


async def gather_concurrently(sessionmaker: async_sessionmaker[AsyncSession]) -> dict[str, Any]:
    async with asyncio.TaskGroup() as group:
        tasks = {
            name: group.create_task(_on_own_session(sessionmaker, part))
            for name, part in parts().items()
        }
    return {name: task.result() for name, task in tasks.items()}


async def gather_sequentially(sessionmaker: async_sessionmaker[AsyncSession]) -> dict[str, Any]:
    """The same parts one after another (the baseline the benchmark compares with)."""
    async with sessionmaker() as session:
        return {name: await part(session) for name, part in parts().items()}


class Dashboard:
    def __init__(self, db: Database, cache: Cache, ttl_s: float) -> None:
        self.db = db
        self.cache = cache
        self.ttl_s = ttl_s

    async def figures(self) -> dict[str, Any]:
        """Site figures, at most ``ttl_s`` seconds old."""
        found: dict[str, Any] = await self.cache.get_or_compute(
            cache_keys.STATS, self.ttl_s, lambda: gather_concurrently(self.db.sessionmaker)
        )
        return found
