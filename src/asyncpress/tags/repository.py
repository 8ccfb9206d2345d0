from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from asyncpress.tags.models import Tag


async def popular(session: AsyncSession, limit: int) -> list[str]:
    """Tags in use, most used first (ties by name): one index range, no counting."""
    stmt = select(Tag.name).where(Tag.uses > 0).order_by(Tag.uses.desc(), Tag.name).limit(limit)
    return list((await session.execute(stmt)).scalars().all())
