"""Article queries.

A page of articles costs at most three statements whatever its size: the
count, the page (author, ``following`` and ``favorited`` folded in as
subqueries), and the page's tags.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, delete, exists, false, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from asyncpress.articles.models import Article, Favorite
from asyncpress.db import insert_ignoring_conflicts
from asyncpress.profiles.models import Follow
from asyncpress.profiles.repository import following_expr, profile_from_row
from asyncpress.profiles.schemas import ProfileOut
from asyncpress.tags.models import Tag, article_tags
from asyncpress.users.models import User


@dataclass(frozen=True, slots=True)
class Filters:
    tag: str | None = None
    author: str | None = None
    favorited: str | None = None
    feed_of: int | None = None

    def where(self) -> list[ColumnElement[bool]]:
        clauses: list[ColumnElement[bool]] = []
        if self.tag is not None:
            clauses.append(
                Article.id.in_(
                    select(article_tags.c.article_id)
                    .join(Tag, Tag.id == article_tags.c.tag_id)
                    .where(Tag.name == self.tag)
                )
            )
        if self.author is not None:
            author = aliased(User)
            clauses.append(
                Article.author_id.in_(select(author.id).where(author.username == self.author))
            )
        if self.favorited is not None:
            fan = aliased(User)
            clauses.append(
                Article.id.in_(
                    select(Favorite.article_id)
                    .join(fan, fan.id == Favorite.user_id)
                    .where(fan.username == self.favorited)
                )
            )
        if self.feed_of is not None:
            clauses.append(
                Article.author_id.in_(
                    select(Follow.followee_id).where(Follow.follower_id == self.feed_of)
                )
            )
        return clauses


@dataclass(slots=True)
class ArticleRecord:
    id: int
    slug: str
    title: str
    description: str
    body: str | None
    tag_list: list[str]
    created_at: object
    updated_at: object
    favorited: bool
    favorites_count: int
    author: ProfileOut


def _favorited_expr(viewer_id: int | None) -> ColumnElement[bool]:
    if viewer_id is None:
        return false()
    return exists().where(Favorite.user_id == viewer_id, Favorite.article_id == Article.id)


async def count(session: AsyncSession, filters: Filters) -> int:
    stmt = select(func.count()).select_from(Article).where(*filters.where())
    return int((await session.execute(stmt)).scalar_one())


async def records(
    session: AsyncSession,
    *,
    viewer_id: int | None,
    where: Sequence[ColumnElement[bool]],
    limit: int | None = None,
    offset: int = 0,
    with_body: bool = True,
) -> list[ArticleRecord]:
    columns = [
        Article.id,
        Article.slug,
        Article.title,
        Article.description,
        Article.created_at,
        Article.updated_at,
        Article.favorites_count,
        User.username,
        User.bio,
        User.image,
        following_expr(viewer_id, Article.author_id).label("following"),
        _favorited_expr(viewer_id).label("favorited"),
    ]
    if with_body:
        columns.append(Article.body)
    stmt = (
        select(*columns)
        .join(User, User.id == Article.author_id)
        .where(*where)
        .order_by(Article.created_at.desc(), Article.id.desc())
        .offset(offset)
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    rows = (await session.execute(stmt)).all()
    tags = await tag_names(session, [row.id for row in rows])
    return [
        ArticleRecord(
            id=row.id,
            slug=row.slug,
            title=row.title,
            description=row.description,
            body=row.body if with_body else None,
            tag_list=tags.get(row.id, []),
            created_at=row.created_at,
            updated_at=row.updated_at,
            favorited=bool(row.favorited),
            favorites_count=row.favorites_count,
            author=profile_from_row(row),
        )
        for row in rows
    ]


async def record_by_slug(
    session: AsyncSession, slug: str, viewer_id: int | None
) -> ArticleRecord | None:
    found = await records(session, viewer_id=viewer_id, where=[Article.slug == slug], limit=1)
    return found[0] if found else None


async def tag_names(session: AsyncSession, article_ids: Sequence[int]) -> dict[int, list[str]]:
    """Each article's tag names, sorted."""
    if not article_ids:
        return {}
    stmt = (
        select(article_tags.c.article_id, Tag.name)
        .join(Tag, Tag.id == article_tags.c.tag_id)
        .where(article_tags.c.article_id.in_(article_ids))
        .order_by(Tag.name)
    )
    out: dict[int, list[str]] = defaultdict(list)
    for article_id, name in (await session.execute(stmt)).all():
        out[article_id].append(name)
    return out


async def by_slug(session: AsyncSession, slug: str) -> Article | None:
    result = await session.execute(select(Article).where(Article.slug == slug))
    return result.scalar_one_or_none()


async def with_author(session: AsyncSession, slug: str) -> tuple[Article, User] | None:
    """The article and its author's row, in one statement."""
    stmt = (
        select(Article, User).join(User, User.id == Article.author_id).where(Article.slug == slug)
    )
    row = (await session.execute(stmt)).one_or_none()
    return None if row is None else (row[0], row[1])


async def id_by_slug(session: AsyncSession, slug: str) -> int | None:
    result = await session.execute(select(Article.id).where(Article.slug == slug))
    return result.scalar_one_or_none()


async def slugs_like(session: AsyncSession, base: str, exclude_id: int | None = None) -> set[str]:
    """Slugs equal to ``base`` or of the form ``base-…`` (slugs hold no LIKE wildcards)."""
    stmt = select(Article.slug).where((Article.slug == base) | Article.slug.like(f"{base}-%"))
    if exclude_id is not None:
        stmt = stmt.where(Article.id != exclude_id)
    return set((await session.execute(stmt)).scalars().all())


async def set_tags(session: AsyncSession, article_id: int, names: Sequence[str]) -> None:
    await session.execute(delete(article_tags).where(article_tags.c.article_id == article_id))
    if not names:
        return
    await session.execute(
        insert_ignoring_conflicts(session, Tag), [{"name": name} for name in sorted(names)]
    )
    ids = (await session.execute(select(Tag.id).where(Tag.name.in_(names)))).scalars().all()
    await session.execute(
        article_tags.insert(), [{"article_id": article_id, "tag_id": tag_id} for tag_id in ids]
    )


async def add_favorite(session: AsyncSession, user_id: int, article_id: int) -> bool:
    """Favorite; True when this call added it."""
    inserted = await session.execute(
        insert_ignoring_conflicts(session, Favorite).values(user_id=user_id, article_id=article_id)
    )
    if inserted.rowcount:  # type: ignore[attr-defined]
        await session.execute(
            update(Article)
            .where(Article.id == article_id)
            .values(favorites_count=Article.favorites_count + 1)
        )
    return bool(inserted.rowcount)  # type: ignore[attr-defined]


async def remove_favorite(session: AsyncSession, user_id: int, article_id: int) -> bool:
    """Unfavorite; True when this call removed it."""
    removed = await session.execute(
        delete(Favorite).where(Favorite.user_id == user_id, Favorite.article_id == article_id)
    )
    if removed.rowcount:  # type: ignore[attr-defined]
        await session.execute(
            update(Article)
            .where(Article.id == article_id)
            .values(favorites_count=Article.favorites_count - 1)
        )
    return bool(removed.rowcount)  # type: ignore[attr-defined]


async def delete_article(session: AsyncSession, article_id: int) -> None:
    await session.execute(delete(Article).where(Article.id == article_id))
