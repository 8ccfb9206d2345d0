from __future__ import annotations

from sqlalchemy import Integer, bindparam, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from asyncpress.comments.models import Comment
from asyncpress.comments.schemas import CommentOut
from asyncpress.core.db.base import utc
from asyncpress.fast.rows import Prepared
from asyncpress.profiles.repository import following_expr, profile_from_row
from asyncpress.users.models import User

_FOR_ARTICLE = Prepared(
    select(
        Comment.id,
        Comment.body,
        Comment.created_at,
        Comment.updated_at,
        User.username,
        User.bio,
        User.image,
        following_expr(bindparam("viewer", type_=Integer), Comment.author_id).label("following"),
    )
    .join(User, User.id == Comment.author_id)
    .where(Comment.article_id == bindparam("article_id", type_=Integer))
    .order_by(Comment.created_at.desc(), Comment.id.desc())
    .limit(bindparam("limit", type_=Integer))
    .offset(bindparam("offset", type_=Integer))
)


async def for_article(
    session: AsyncSession, article_id: int, viewer_id: int | None, limit: int, offset: int
) -> list[CommentOut]:
    """Newest first, each with its author's profile, in one statement."""
    params = {"article_id": article_id, "viewer": viewer_id, "limit": limit, "offset": offset}
    return [
        CommentOut(
            id=row["id"],
            body=row["body"],
            created_at=utc(row["created_at"]),
            updated_at=utc(row["updated_at"]),
            author=profile_from_row(row),
        )
        for row in await _FOR_ARTICLE.rows(session, params)
    ]


async def by_id(session: AsyncSession, comment_id: int) -> Comment | None:
    return await session.get(Comment, comment_id)


async def delete_by_id(session: AsyncSession, comment_id: int) -> None:
    await session.execute(delete(Comment).where(Comment.id == comment_id))
