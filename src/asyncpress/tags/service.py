"""The tags in use, most used first; the default page is cached."""

from __future__ import annotations

from asyncpress.core import cache_keys
from asyncpress.core.cache import Cache
from asyncpress.core.uow import Database
from asyncpress.tags import repository

# Only this page (the one front ends ask for) is cached; article writes that
# can change it retire cache_keys.TAGS.
DEFAULT_LIMIT = 100


class Tags:
    def __init__(self, db: Database, cache: Cache, ttl_s: float) -> None:
        self.db = db
        self.cache = cache
        self.ttl_s = ttl_s

    async def popular(self, limit: int = DEFAULT_LIMIT) -> list[str]:
        async def read() -> list[str]:
            # A session only when the database is read: a cache hit needs none.
            async with self.db.reading() as reader:
                return await repository.popular(reader, limit)

        if limit != DEFAULT_LIMIT:
            return await read()
        tags: list[str] = await self.cache.get_or_compute(cache_keys.TAGS, self.ttl_s, read)
        return tags
