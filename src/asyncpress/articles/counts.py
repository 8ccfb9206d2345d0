"""Cached ``articlesCount`` values.

Counting every match costs more than reading the page's rows on a large
table (docs/benchmarks.md, "What the profiles showed"), and the answer
changes only when someone writes. So each filter's count is kept in the
cache (this process's memory, or Redis shared by every worker) under a
*generation*: any write that can change a count starts a new generation, and
the counts of the old one are never read again. A count computed from a
snapshot taken before a write is stored under the generation it started
with, which that write has already retired, so it cannot outlive the write.

Writes made through the API retire the generation when they commit (each
declares ``cache_keys.ARTICLE_COUNTS`` in its unit of work). Rows
written behind the API's back (SQL by hand, ``asyncpress seed`` on a live
database) show in the counts after ``ARTICLES_COUNT_CACHE_S`` at the latest.
"""

from __future__ import annotations

import json
import secrets

from asyncpress.articles.repository import Filters
from asyncpress.core.cache import Cache
from asyncpress.core.cache_keys import ARTICLE_COUNTS as GENERATION_KEY

# The generation itself lives far longer than any count stored under it.
GENERATION_TTL_S = 24 * 3600.0


async def _generation(cache: Cache) -> str:
    async def new() -> str:
        return secrets.token_hex(8)

    generation: str = await cache.get_or_compute(GENERATION_KEY, GENERATION_TTL_S, new)
    return generation


def _key(generation: str, filters: Filters) -> str:
    return f"articles:count:{generation}:{json.dumps(filters.values(), sort_keys=True)}"


async def lookup(cache: Cache, filters: Filters, ttl_s: float) -> tuple[str | None, int | None]:
    """The key a count of ``filters`` is kept under (None: caching is off) and the count if kept."""
    if ttl_s <= 0:
        return None, None
    key = _key(await _generation(cache), filters)
    found = await cache.get(key)
    return key, None if found is None else int(found)


async def keep(cache: Cache, key: str | None, total: int, ttl_s: float) -> None:
    if key is not None:
        await cache.set(key, total, ttl_s)
