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

from sqlalchemy import (
    CTE,
    ColumnElement,
    Integer,
    String,
    any_,
    bindparam,
    func,
    insert,
    literal,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from asyncpress.core.db.bulk import table_of
from asyncpress.tags.models import Tag, article_tags

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


# The parameter ``linked_from``'s statements take: the tags' names, distinct.
TAG_NAMES = "tag_names"


def linked_from(article: CTE, created_at: ColumnElement[Any]) -> CTE:
    """CTEs that link the new article ``article`` returns (its ``id``) to its tags (PostgreSQL).

    The tags are named by the ``TAG_NAMES`` array parameter. For a write
    done in one statement (``core.uow.OneStatement``): known tags are
    locked in id order (as ``add`` changes them) and their counts moved;
    missing ones are made with a count of 1, or, made meanwhile by another
    writer, counted once more (``ON CONFLICT``). The CTE returns the links.
    """
    names = bindparam(TAG_NAMES, type_=ARRAY(String))
    known = (
        select(_TAGS.c.id, _TAGS.c.name)
        .where(_TAGS.c.name == any_(names))
        .order_by(_TAGS.c.id)
        # The lock the UPDATE below takes anyway; links of other writers
        # (their foreign keys' KEY SHARE) do not wait for it, nor it for them.
        .with_for_update(key_share=True)
        .cte("known_tags")
    )
    counted = (
        update(_TAGS)
        .where(_TAGS.c.id == known.c.id)
        .values(uses=_TAGS.c.uses + 1)
        .returning(_TAGS.c.id)
        .cte("counted_tags")
    )
    name = func.unnest(names).column_valued("name")
    missing = (
        select(name, literal(1, Integer)).where(name.not_in(select(known.c.name))).order_by(name)
    )
    made = (
        pg_insert(_TAGS)
        .from_select([_TAGS.c.name, _TAGS.c.uses], missing)
        .on_conflict_do_update(index_elements=[_TAGS.c.name], set_={"uses": _TAGS.c.uses + 1})
        .returning(_TAGS.c.id)
        .cte("made_tags")
    )
    ids = union_all(select(counted.c.id), select(made.c.id)).subquery("tag_ids")
    links = select(article.c.id, ids.c.id, created_at).select_from(article).join(ids, true())
    columns = [article_tags.c.article_id, article_tags.c.tag_id, article_tags.c.article_created_at]
    return (
        insert(article_tags)
        .from_select(columns, links)
        .returning(article_tags.c.tag_id)
        .cte("linked_tags")
    )
