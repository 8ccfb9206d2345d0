from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from asyncpress.deps import ResourcesDep
from asyncpress.schemas import Schema
from asyncpress.tags import repository

router = APIRouter(tags=["Tags"])

DEFAULT_LIMIT = 100
# Only the default list (the one front ends ask for) is cached; article
# writes that can change it delete this key.
TAGS_KEY = f"tags:{DEFAULT_LIMIT}"


class TagsResponse(Schema):
    tags: list[str]


@router.get("/tags", response_model=TagsResponse)
async def list_tags(
    resources: ResourcesDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = DEFAULT_LIMIT,
) -> TagsResponse:
    """Tags in use, most used first (ties by name)."""

    async def popular() -> list[str]:
        # A session only when the database is read: a cache hit needs none.
        async with resources.sessionmaker() as session:
            return await repository.popular(session, limit)

    if limit != DEFAULT_LIMIT:
        return TagsResponse(tags=await popular())
    tags = await resources.cache.get_or_compute(TAGS_KEY, resources.settings.tags_cache_s, popular)
    return TagsResponse(tags=tags)
