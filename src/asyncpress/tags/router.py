from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from asyncpress.deps import SessionDep
from asyncpress.schemas import Schema
from asyncpress.tags import repository

router = APIRouter(tags=["Tags"])


class TagsResponse(Schema):
    tags: list[str]


@router.get("/tags", response_model=TagsResponse)
async def list_tags(
    session: SessionDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> TagsResponse:
    """Tags in use, most used first (ties by name)."""
    return TagsResponse(tags=await repository.popular(session, limit))
