"""The dashboard's queries, each a part that runs on a session of its own."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from asyncpress.articles.models import Article
from asyncpress.comments.models import Comment
from asyncpress.core.db.base import utcnow
from asyncpress.tags.models import Tag
from asyncpress.users.models import User

TOP_TAGS = 10


def _count(stmt: Select[Any]) -> Callable[[AsyncSession], Awaitable[int]]:
    async def run(session: AsyncSession) -> int:
        return int((await session.execute(stmt)).scalar_one())

    return run


async def _top_tags(session: AsyncSession) -> list[dict[str, Any]]:
    # The use counts the writes keep (asyncpress.tags.uses): no counting of links.
    stmt = (
        select(Tag.name, Tag.uses)
        .where(Tag.uses > 0)
        .order_by(Tag.uses.desc(), Tag.name)
        .limit(TOP_TAGS)
    )
    return [{"tag": name, "count": int(n)} for name, n in (await session.execute(stmt)).all()]


def parts() -> dict[str, Callable[[AsyncSession], Awaitable[Any]]]:
    since = utcnow() - timedelta(hours=24)
    return {
        "users": _count(select(func.count()).select_from(User)),
        "articles": _count(select(func.count()).select_from(Article)),
        "comments": _count(select(func.count()).select_from(Comment)),
        "tags": _count(select(func.count()).select_from(Tag).where(Tag.uses > 0)),
        "articles_last24h": _count(
            select(func.count()).select_from(Article).where(Article.created_at >= since)
        ),
        "top_tags": _top_tags,
    }
