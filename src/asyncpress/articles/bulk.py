"""Bulk import: up to 10,000 articles, validated up front, written in one transaction."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from asyncpress.articles import repository
from asyncpress.articles.models import Article, RetiredSlug
from asyncpress.articles.schemas import NewArticle
from asyncpress.articles.slugs import first_free, slugify, write_retrying_slug
from asyncpress.core import cache_keys, json_depth
from asyncpress.core.db.base import utcnow
from asyncpress.core.db.bulk import insert_rows, table_of
from asyncpress.core.errors import BadRequest, InvalidFields, validation_errors
from asyncpress.core.uow import Database, UnitOfWork
from asyncpress.tags import uses as tag_uses
from asyncpress.tags.models import Tag, article_tags

MAX_IMPORT = 10_000
_items = TypeAdapter(list[NewArticle])


def _decode(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:  # binary, compressed or another charset
        raise BadRequest("body", "must be UTF-8 text (uncompressed JSON or NDJSON)") from exc


def _json(text: str, field: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidFields({field: ["is not valid JSON"]}) from exc


def parse(body: bytes, ndjson: bool) -> list[NewArticle]:
    """Decode and validate every item (CPU work: call from a worker thread)."""
    # One check covers every line of NDJSON too: the deepest line is the
    # body's depth.
    if json_depth.too_deep(body):
        raise BadRequest("body", json_depth.MESSAGE)
    text = _decode(body)
    if ndjson:
        raw: Any = []
        for number, line in enumerate(text.splitlines()):
            if line.strip():
                raw.append(_json(line, f"articles[{number}]"))
    else:
        document = _json(text, "body")
        if not isinstance(document, dict) or "articles" not in document:
            raise InvalidFields({"articles": ["can't be blank"]})
        raw = document["articles"]
    if not isinstance(raw, list):
        raise InvalidFields({"articles": ["must be a list"]})
    if not raw:
        raise InvalidFields({"articles": ["can't be empty"]})
    if len(raw) > MAX_IMPORT:
        raise InvalidFields({"articles": [f"has too many items (maximum is {MAX_IMPORT})"]})
    try:
        return _items.validate_python(raw)
    except ValidationError as exc:
        errors: dict[str, list[str]] = {}
        for field, messages in validation_errors(exc.errors()).items():
            errors[_item_field(field)] = messages
        raise InvalidFields(errors) from exc


def _item_field(field: str) -> str:
    # "0.title" -> "articles[0].title"; "3" (item is not an object) -> "articles[3]"
    index, _, rest = field.partition(".")
    return f"articles[{index}].{rest}" if rest else f"articles[{index}]"


async def _free_slugs(
    session: AsyncSession, titles: Sequence[str], *, contended: bool
) -> list[str]:
    bases = [slugify(title) for title in titles]
    taken: set[str] = set()
    unique_bases = sorted(set(bases))
    for start in range(0, len(unique_bases), 500):
        chunk = unique_bases[start : start + 500]
        in_use = select(Article.slug).where(Article.slug.in_(chunk))
        retired = select(RetiredSlug.slug).where(RetiredSlug.slug.in_(chunk))
        found = await session.execute(in_use.union(retired))
        for slug in found.scalars():
            taken |= await repository.slugs_like(session, slug)
    slugs = []
    for base in bases:
        slug = first_free(base, taken, contended=contended)
        taken.add(slug)
        slugs.append(slug)
    return slugs


async def _write(
    session: AsyncSession, author_id: int, items: list[NewArticle], *, contended: bool
) -> list[str]:
    now = utcnow()
    slugs = await _free_slugs(session, [item.title for item in items], contended=contended)
    rows = [
        {
            "slug": slug,
            "title": item.title,
            "description": item.description,
            "body": item.body,
            "author_id": author_id,
            "favorites_count": 0,
            "created_at": now,
            "updated_at": now,
        }
        for slug, item in zip(slugs, items, strict=True)
    ]
    ids = await insert_rows(session, table_of(Article), rows, returning_ids=True)
    names = sorted({tag for item in items for tag in item.tag_list})
    if names:
        await insert_rows(
            session,
            table_of(Tag),
            [{"name": n} for n in names],
            ignore_conflicts=True,
        )
        tag_ids: dict[str, int] = {}
        for start in range(0, len(names), 500):
            found = await session.execute(
                select(Tag.name, Tag.id).where(Tag.name.in_(names[start : start + 500]))
            )
            tag_ids.update({row[0]: row[1] for row in found.all()})
        links = [
            {"article_id": article_id, "tag_id": tag_ids[tag], "article_created_at": now}
            for article_id, item in zip(ids, items, strict=True)
            for tag in item.tag_list
        ]
        await insert_rows(session, article_tags, links)
        await tag_uses.add(session, tag_uses.linked(links))
    return slugs


async def import_articles(db: Database, author_id: int, items: list[NewArticle]) -> list[str]:
    """All or nothing: one unit of work, again if a concurrent writer took a slug."""

    async def write(uow: UnitOfWork, contended: bool) -> list[str]:
        slugs = await _write(uow.session, author_id, items, contended=contended)
        uow.retire(cache_keys.STATS, cache_keys.TAGS, cache_keys.ARTICLE_COUNTS)
        await uow.commit()
        return slugs

    return await write_retrying_slug(db, write)
