"""One way to build a Redis client, for the cache and the event hub."""

from __future__ import annotations

from typing import Any

import redis
from redis.asyncio import Redis
from redis.driver_info import DriverInfo


def redis_client(url: str, timeout_s: float | None, **options: Any) -> Redis:
    return Redis.from_url(
        url,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s or 1.0,
        decode_responses=True,
        # Named here, redis-py skips looking its version up in the package
        # metadata (a file-system scan) on the event loop at first connect.
        driver_info=DriverInfo(name="redis-py", lib_version=redis.__version__),
        **options,
    )
