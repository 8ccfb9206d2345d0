from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Insert, Integer, String, bindparam, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from asyncpress.articles.models import Article
from asyncpress.comments.models import Comment
from asyncpress.comments.schemas import CommentOut
from asyncpress.core.db.base import utc
from asyncpress.core.db.bulk import table_of
from asyncpress.core.db.engine import Reader
from asyncpress.fast.rows import Prepared
from asyncpress.profiles.repository import following_expr, profile_from_row
from asyncpress.users.models import User

# What a page of comments shows, newest first, each with its author's profile.
_SHOWN = (
    Comment.id,
    Comment.body,
    Comment.created_at,
    Comment.updated_at,
    User.username,
    User.bio,
    User.image,
    following_expr(bindparam("viewer", type_=Integer), Comment.author_id).label("following"),
)
_NEWEST_FIRST = (Comment.created_at.desc(), Comment.id.desc())
_LIMIT, _OFFSET = bindparam("limit", type_=Integer), bindparam("offset", type_=Integer)

_FOR_ARTICLE = Prepared(
    select(*_SHOWN)
    .join(User, User.id == Comment.author_id)
    .where(Comment.article_id == bindparam("article_id", type_=Integer))
    .order_by(*_NEWEST_FIRST)
    .limit(_LIMIT)
    .offset(_OFFSET)
)


def insert_returning_id() -> Insert:
    """A comment's INSERT … RETURNING id; binds body, article_id, author_id and now."""
    comments = table_of(Comment)
    now = bindparam("now", type_=comments.c.created_at.type)
    return (
        insert(comments)
        .values(
            body=bindparam("body", type_=comments.c.body.type),
            article_id=bindparam("article_id", type_=Integer),
            author_id=bindparam("author_id", type_=Integer),
            created_at=now,
            updated_at=now,
        )
        .returning(comments.c.id)
    )


_INSERT = Prepared(insert_returning_id())


async def add(
    session: AsyncSession, article_id: int, author_id: int, body: str, now: datetime
) -> int:
    """A new comment's id: one INSERT … RETURNING, driver-direct on PostgreSQL."""
    params = {"body": body, "article_id": article_id, "author_id": author_id, "now": now}
    rows = await _INSERT.rows(session, params)
    comment_id: int = rows[0]["id"]
    return comment_id


# The same page, found by the article's current slug: the article joined to
# its comments, so an article without any still gives one row (of NULLs).
_PAGE_BY_SLUG = Prepared(
    select(Article.id.label("article_id"), *_SHOWN)
    .select_from(Article)
    .outerjoin(Comment, Comment.article_id == Article.id)
    .outerjoin(User, User.id == Comment.author_id)
    .where(Article.slug == bindparam("slug", type_=String))
    .order_by(*_NEWEST_FIRST)
    .limit(_LIMIT)
    .offset(_OFFSET)
)


def _comment(row: Any) -> CommentOut:
    return CommentOut(
        id=row["id"],
        body=row["body"],
        created_at=utc(row["created_at"]),
        updated_at=utc(row["updated_at"]),
        author=profile_from_row(row),
    )


async def for_article(
    reader: Reader, article_id: int, viewer_id: int | None, limit: int, offset: int
) -> list[CommentOut]:
    """Newest first, each with its author's profile, in one statement."""
    params = {"article_id": article_id, "viewer": viewer_id, "limit": limit, "offset": offset}
    return [_comment(row) for row in await _FOR_ARTICLE.rows(reader, params)]


async def page_by_slug(
    reader: Reader, slug: str, viewer_id: int | None, limit: int, offset: int
) -> list[CommentOut] | None:
    """The page of the article with this current slug, in one statement.

    None when no row came back: no article has this slug now (it may be a
    retired one), or the offset is past the last comment. The caller tells
    those apart the long way; a first page never needs to.
    """
    params = {"slug": slug, "viewer": viewer_id, "limit": limit, "offset": offset}
    rows = await _PAGE_BY_SLUG.rows(reader, params)
    if not rows:
        return None
    return [_comment(row) for row in rows if row["id"] is not None]


async def by_id(session: AsyncSession, comment_id: int) -> Comment | None:
    return await session.get(Comment, comment_id)


async def delete_by_id(session: AsyncSession, comment_id: int) -> None:
    await session.execute(delete(Comment).where(Comment.id == comment_id))
