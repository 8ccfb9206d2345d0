"""Dashboard figures, each part a query on its own connection, all at once.

The parts run in an ``asyncio.TaskGroup``; every task opens its own session,
because an AsyncSession must never be shared between tasks. The whole answer
is cached for ``STATS_CACHE_S``: figures may be that many seconds old, and no
write has to invalidate them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import Select, distinct, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from asyncpress.articles.models import Article
from asyncpress.comments.models import Comment
from asyncpress.db import utcnow
from asyncpress.tags.models import Tag, article_tags
from asyncpress.users.models import User

TOP_TAGS = 10


def _count(stmt: Select[Any]) -> Callable[[AsyncSession], Awaitable[int]]:
    async def run(session: AsyncSession) -> int:
        return int((await session.execute(stmt)).scalar_one())

    return run


async def _top_tags(session: AsyncSession) -> list[dict[str, Any]]:
    uses = func.count(article_tags.c.article_id).label("uses")
    stmt = (
        select(Tag.name, uses)
        .join(article_tags, article_tags.c.tag_id == Tag.id)
        .group_by(Tag.id, Tag.name)
        .order_by(uses.desc(), Tag.name)
        .limit(TOP_TAGS)
    )
    return [{"tag": name, "count": int(n)} for name, n in (await session.execute(stmt)).all()]


def parts() -> dict[str, Callable[[AsyncSession], Awaitable[Any]]]:
    since = utcnow() - timedelta(hours=24)
    return {
        "users": _count(select(func.count()).select_from(User)),
        "articles": _count(select(func.count()).select_from(Article)),
        "comments": _count(select(func.count()).select_from(Comment)),
        "tags": _count(select(func.count(distinct(article_tags.c.tag_id)))),
        "articles_last24h": _count(
            select(func.count()).select_from(Article).where(Article.created_at >= since)
        ),
        "top_tags": _top_tags,
    }


async def _on_own_session(
    sessionmaker: async_sessionmaker[AsyncSession],
    part: Callable[[AsyncSession], Awaitable[Any]],
) -> Any:
    async with sessionmaker() as session:
        return await part(session)


async def gather_concurrently(sessionmaker: async_sessionmaker[AsyncSession]) -> dict[str, Any]:
    async with asyncio.TaskGroup() as group:
        tasks = {
            name: group.create_task(_on_own_session(sessionmaker, part))
            for name, part in parts().items()
        }
    return {name: task.result() for name, task in tasks.items()}


async def gather_sequentially(sessionmaker: async_sessionmaker[AsyncSession]) -> dict[str, Any]:
    """The same parts one after another (the baseline the benchmark compares with)."""
    async with sessionmaker() as session:
        return {name: await part(session) for name, part in parts().items()}
