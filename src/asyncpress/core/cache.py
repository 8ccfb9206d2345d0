"""Caching of values that may be a little stale: in process, or in Redis.

Embedded mode keeps entries in this process's memory. With ``REDIS_URL`` set
they live in Redis, shared by every worker and machine. Several processes
without Redis cache nothing: each would keep its own copy, and a write
through one would leave the others serving the old one
(``Settings.process_cache`` decides). Values are JSON. A
Redis outage is never an error: a failed or slow cache call (short socket
timeouts) is logged and treated as a miss, so requests fall back to the
database.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from redis.exceptions import RedisError

from asyncpress.core.config import Settings
from asyncpress.core.redis import redis_client

log = logging.getLogger(__name__)


class CacheBackend(Protocol):
    """Where entries live: this process's memory, Redis, or nowhere."""

    keeps_values: bool

    async def get(self, key: str) -> Any | None: ...
    async def set(self, key: str, value: Any, ttl_s: float) -> None: ...
    async def delete(self, *keys: str) -> None: ...
    async def close(self) -> None: ...


class MemoryCache:
    keeps_values = True

    def __init__(self, max_entries: int = 4096) -> None:
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, str]] = {}

    async def get(self, key: str) -> Any | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] < time.monotonic():
            return None
        return json.loads(entry[1])

    async def set(self, key: str, value: Any, ttl_s: float) -> None:
        if ttl_s <= 0:
            return
        if len(self._entries) >= self.max_entries:
            now = time.monotonic()
            self._entries = {k: v for k, v in self._entries.items() if v[0] >= now}
            while len(self._entries) >= self.max_entries:
                self._entries.pop(next(iter(self._entries)))
        self._entries[key] = (time.monotonic() + ttl_s, json.dumps(value))

    async def delete(self, *keys: str) -> None:
        for key in keys:
            self._entries.pop(key, None)

    async def close(self) -> None:
        self._entries.clear()


class RedisCache:
    PREFIX = "asyncpress:cache:"
    keeps_values = True  # while Redis answers; a failed call is a miss

    def __init__(self, url: str, timeout_s: float = 0.25) -> None:
        self.redis = redis_client(url, timeout_s)
        self.failures = 0

    def _failed(self, action: str, exc: Exception) -> None:
        self.failures += 1
        if self.failures == 1 or self.failures % 100 == 0:
            log.warning("cache %s failed (%s failures so far): %s", action, self.failures, exc)

    async def get(self, key: str) -> Any | None:
        try:
            raw = await self.redis.get(self.PREFIX + key)
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed("get", exc)
            return None
        return None if raw is None else json.loads(raw)

    async def set(self, key: str, value: Any, ttl_s: float) -> None:
        if ttl_s <= 0:
            return
        try:
            await self.redis.set(self.PREFIX + key, json.dumps(value), px=int(ttl_s * 1000))
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed("set", exc)

    async def delete(self, *keys: str) -> None:
        if not keys:
            return
        try:
            await self.redis.delete(*(self.PREFIX + k for k in keys))
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed("delete", exc)

    async def close(self) -> None:
        await self.redis.aclose()


class Cache:
    """The app's cache over a backend.

    A cold key is computed once per process: requests that ask for it while
    it is being computed wait for that result. The computation runs in a
    task of its own, so a waiter that gives up (a deadline, a client gone)
    leaves the others their result; the task itself is bounded by the
    database's own limits (``DB_POOL_TIMEOUT_S``, ``DB_STATEMENT_TIMEOUT_MS``).
    Without a backend that keeps values (caching off) nothing is shared: a
    request that waited for another's result could get a value read before
    its own write committed.
    """

    def __init__(self, backend: CacheBackend) -> None:
        self.backend = backend
        # Only keys being computed right now are here, so the table never
        # outgrows the work in flight.
        self._computing: dict[str, asyncio.Task[Any]] = {}
        # Lookups by result, for /metrics: found, read by this request, or
        # joined a read already running.
        self.counters = {"hit": 0, "computed": 0, "joined": 0}

    async def get_or_compute(
        self, key: str, ttl_s: float, compute: Callable[[], Awaitable[Any]]
    ) -> Any:
        if ttl_s <= 0 or not self.backend.keeps_values:
            self.counters["computed"] += 1
            return await compute()
        found = await self.backend.get(key)
        if found is not None:
            self.counters["hit"] += 1
            return found
        task = self._computing.get(key)
        if task is None:
            self.counters["computed"] += 1
            task = asyncio.create_task(self._compute(key, ttl_s, compute))
            self._computing[key] = task
            task.add_done_callback(lambda done: self._computed(key, done))
        else:
            self.counters["joined"] += 1
        return await asyncio.shield(task)

    async def _compute(self, key: str, ttl_s: float, compute: Callable[[], Awaitable[Any]]) -> Any:
        value = await compute()
        await self.backend.set(key, value, ttl_s)
        return value

    def _computed(self, key: str, task: asyncio.Task[Any]) -> None:
        if self._computing.get(key) is task:
            del self._computing[key]
        if not task.cancelled():
            task.exception()  # retrieved here too, in case every waiter gave up

    async def get(self, key: str) -> Any | None:
        return await self.backend.get(key)

    async def set(self, key: str, value: Any, ttl_s: float) -> None:
        await self.backend.set(key, value, ttl_s)

    async def invalidate(self, *keys: str) -> None:
        await self.backend.delete(*keys)

    async def close(self) -> None:
        await self.backend.close()


class NoCache:
    """Every read a miss: for several processes that share no cache."""

    keeps_values = False

    async def get(self, key: str) -> Any | None:
        return None

    async def set(self, key: str, value: Any, ttl_s: float) -> None:
        return None

    async def delete(self, *keys: str) -> None:
        return None

    async def close(self) -> None:
        return None


def backend_for(settings: Settings) -> CacheBackend:
    if settings.redis_url:
        return RedisCache(settings.redis_url)
    if settings.process_cache:
        return MemoryCache()
    log.warning(
        "caching is off: this process may not be the only one serving %s "
        "(SERVE_WORKERS=%s) and REDIS_URL is not set; set REDIS_URL to share a cache, "
        "or LOCAL_CACHE=on if this is the only process",
        "a shared database server" if not settings.is_sqlite else "this database",
        settings.serve_workers,
    )
    return NoCache()
