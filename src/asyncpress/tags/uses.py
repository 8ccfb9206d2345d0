"""Tag use counts, changed by the writes that link and unlink tags.

Increments rather than recounts: under PostgreSQL's READ COMMITTED, a
recount in one transaction cannot see a link another just committed, while
``uses = uses + n`` re-reads the row it waited for. Rows are changed in id
order, so two writers touching the same tags lock them in the same order.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import bindparam, update
from sqlalchemy.ext.asyncio import AsyncSession

from asyncpress.core.db.bulk import table_of
from asyncpress.tags.models import Tag

_TAGS = table_of(Tag)
_ADD = (
    update(_TAGS)
    .where(_TAGS.c.id == bindparam("tag_id"))
    .values(uses=_TAGS.c.uses + bindparam("delta"))
)


def linked(links: Iterable[Mapping[str, Any]]) -> Counter[int]:
    """+1 per tag for each ``article_tags`` row about to be inserted."""
    return Counter(int(link["tag_id"]) for link in links)


def changes(removed: Sequence[int], added: Sequence[int]) -> Counter[int]:
    delta: Counter[int] = Counter(added)
    delta.subtract(removed)
    return delta


async def add(session: AsyncSession, delta: Mapping[int, int]) -> None:
    """Add each tag's delta to its use count, in one (pipelined) statement."""
    rows = [{"tag_id": tag_id, "delta": n} for tag_id, n in sorted(delta.items()) if n]
    if rows:
        await session.execute(_ADD, rows)
