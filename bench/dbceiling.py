"""The database ceiling: the article list page as one hand-written statement.

Raw asyncpg, or raw asyncmy for a ``mysql+asyncmy://`` URL (pool of 10, 64
tasks, uvloop, pinned to CPU 0 like the server)
runs the statement below, which produces the same 20-article page as
``GET /api/articles?limit=20`` for a signed-in reader: authors, tags, the
total count, ``favorited`` and ``following``. No HTTP, no ORM, no JSON: what
the database itself allows for this page on this machine.

    python -m bench.dbceiling DSN SECONDS VIEWER_ID[,VIEWER_ID...]

prints one JSON line: pages/s and latency percentiles (ms).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from typing import Any

import asyncmy
import asyncpg
import uvloop
from servers.mariadb import asyncmy_args

PAGE = """
SELECT a.slug, a.title, a.description, a.created_at, a.updated_at, a.favorites_count,
       u.username, u.bio, u.image,
       EXISTS (SELECT 1 FROM follows f
               WHERE f.follower_id = $1 AND f.followee_id = a.author_id) AS following,
       EXISTS (SELECT 1 FROM favorites v
               WHERE v.user_id = $1 AND v.article_id = a.id) AS favorited,
       ARRAY(SELECT t.name FROM article_tags x JOIN tags t ON t.id = x.tag_id
             WHERE x.article_id = a.id ORDER BY t.name) AS tag_list,
       (SELECT count(*) FROM articles) AS articles_count
FROM articles a
JOIN users u ON u.id = a.author_id
ORDER BY a.created_at DESC, a.id DESC
LIMIT 20
"""

# The same page in MySQL's dialect: JSON_ARRAYAGG for the tags, the join
# order named as asyncpress names it (MariaDB's own choice sorts every article).
MY_PAGE = """
SELECT STRAIGHT_JOIN a.slug, a.title, a.description, a.created_at, a.updated_at,
       a.favorites_count, u.username, u.bio, u.image,
       EXISTS (SELECT 1 FROM follows f
               WHERE f.follower_id = %s AND f.followee_id = a.author_id) AS following,
       EXISTS (SELECT 1 FROM favorites v
               WHERE v.user_id = %s AND v.article_id = a.id) AS favorited,
       (SELECT STRAIGHT_JOIN JSON_ARRAYAGG(t.name) FROM article_tags x
               JOIN tags t ON t.id = x.tag_id WHERE x.article_id = a.id) AS tag_list,
       (SELECT count(*) FROM articles) AS articles_count
FROM articles a
JOIN users u ON u.id = a.author_id
ORDER BY a.created_at DESC, a.id DESC
LIMIT 20
"""

POOL_SIZE = 10
TASKS = 64


class _PgPages:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def page(self, viewer: int) -> int:
        async with self.pool.acquire() as conn:
            return len(await conn.fetch(PAGE, viewer))

    async def close(self) -> None:
        await self.pool.close()


class _MyPages:
    def __init__(self, pool: Any) -> None:
        self.pool = pool

    async def page(self, viewer: int) -> int:
        async with self.pool.acquire() as conn, conn.cursor() as cursor:
            await cursor.execute(MY_PAGE, (viewer, viewer))
            return len(await cursor.fetchall())

    async def close(self) -> None:
        self.pool.close()
        await self.pool.wait_closed()


async def _pages(dsn: str) -> _PgPages | _MyPages:
    if not dsn.startswith("mysql"):
        return _PgPages(await asyncpg.create_pool(dsn, min_size=POOL_SIZE, max_size=POOL_SIZE))
    pool = await asyncmy.create_pool(
        **asyncmy_args(dsn), minsize=POOL_SIZE, maxsize=POOL_SIZE, autocommit=True
    )
    return _MyPages(pool)


async def measure(dsn: str, seconds: float, viewers: list[int]) -> dict[str, float]:
    pool = await _pages(dsn)
    latencies: list[float] = []
    pages = 0
    stop_at = 0.0

    async def worker(offset: int) -> None:
        nonlocal pages
        n = offset
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            rows = await pool.page(viewers[n % len(viewers)])
            assert rows == 20
            latencies.append(time.perf_counter() - started)
            pages += 1
            n += 1

    try:
        stop_at = time.perf_counter() + 1.0  # warm-up: connections, plans, caches
        await asyncio.gather(*(worker(i) for i in range(TASKS)))
        latencies.clear()
        pages = 0
        started = time.perf_counter()
        stop_at = started + seconds
        await asyncio.gather(*(worker(i) for i in range(TASKS)))
        elapsed = time.perf_counter() - started
    finally:
        await pool.close()
    latencies.sort()

    def pick(q: float) -> float:
        return round(1000 * latencies[min(len(latencies) - 1, int(q * len(latencies)))], 2)

    return {
        "requests": pages,
        "rps": round(pages / elapsed, 1),
        "p50_ms": pick(0.5),
        "p90_ms": pick(0.9),
        "p99_ms": pick(0.99),
        "max_ms": round(1000 * latencies[-1], 2),
        "error_count": 0,
    }


def main() -> None:
    dsn, seconds, viewers = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    os.sched_setaffinity(0, {0})
    result = uvloop.run(measure(dsn, seconds, [int(v) for v in viewers.split(",")]))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
