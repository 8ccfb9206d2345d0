from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from asyncpress.core.web import provided
from asyncpress.tags.schemas import TagsResponse
from asyncpress.tags.service import DEFAULT_LIMIT, Tags

router = APIRouter(prefix="/api", tags=["Tags"])


@router.get("/tags", response_model=TagsResponse)
async def list_tags(
    tags: Annotated[Tags, provided(Tags)],
    limit: Annotated[int, Query(ge=1, le=1000)] = DEFAULT_LIMIT,
) -> TagsResponse:
    """Tags in use, most used first (ties by name)."""
    return TagsResponse(tags=await tags.popular(limit))
