from __future__ import annotations

from pydantic import Field

from asyncpress.core.schemas import Schema


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
