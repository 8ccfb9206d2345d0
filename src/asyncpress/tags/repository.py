from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from asyncpress.tags.models import Tag, article_tags


async def popular(session: AsyncSession, limit: int) -> list[str]:
    """Tags in use, most used first (ties by name)."""
    uses = func.count(article_tags.c.article_id)
    stmt = (
        select(Tag.name)
        .join(article_tags, article_tags.c.tag_id == Tag.id)
        .group_by(Tag.id, Tag.name)
        .order_by(uses.desc(), Tag.name)
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars().all())
