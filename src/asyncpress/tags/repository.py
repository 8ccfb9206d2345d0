from __future__ import annotations

from sqlalchemy import Integer, bindparam, select

from asyncpress.core.db.engine import Reader
from asyncpress.fast.rows import Prepared
from asyncpress.tags.models import Tag

_POPULAR = Prepared(
    select(Tag.name)
    .where(Tag.uses > 0)
    .order_by(Tag.uses.desc(), Tag.name)
    .limit(bindparam("limit", type_=Integer))
)


async def popular(reader: Reader, limit: int) -> list[str]:
    """Tags in use, most used first (ties by name): one index range, no counting."""
    return [row["name"] for row in await _POPULAR.rows(reader, {"limit": limit})]
