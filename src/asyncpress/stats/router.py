from __future__ import annotations

from fastapi import APIRouter
from pydantic import Field

from asyncpress.deps import ResourcesDep
from asyncpress.schemas import Schema
from asyncpress.stats import service

router = APIRouter(tags=["Stats"])

STATS_KEY = "stats"


class TagCount(Schema):
    tag: str
    count: int


class Stats(Schema):
    users: int
    articles: int
    comments: int
    tags: int
    articles_last24h: int = Field(alias="articlesLast24h")  # not "…24H"
    top_tags: list[TagCount]


class StatsResponse(Schema):
    stats: Stats


@router.get("/stats", response_model=StatsResponse)
async def stats(resources: ResourcesDep) -> StatsResponse:
    """Site figures, at most ``STATS_CACHE_S`` seconds old."""
    figures = await resources.cache.get_or_compute(
        STATS_KEY,
        resources.settings.stats_cache_s,
        lambda: service.gather_concurrently(resources.sessionmaker),
    )
    return StatsResponse(stats=Stats.model_validate(figures))
