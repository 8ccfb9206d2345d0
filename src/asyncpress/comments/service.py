from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from asyncpress.articles import repository as articles
from asyncpress.articles import service as article_service
from asyncpress.comments import repository
from asyncpress.comments.models import Comment
from asyncpress.comments.schemas import CommentOut, NewComment
from asyncpress.db import begin_write, utcnow
from asyncpress.errors import Forbidden, NotFound
from asyncpress.events import publish as events
from asyncpress.notifications import service as notifications
from asyncpress.profiles.schemas import ProfileOut
from asyncpress.users.models import User


async def _article_id(session: AsyncSession, slug: str) -> int:
    article_id = await articles.id_by_slug(session, slug)
    if article_id is None:
        raise NotFound("article")
    return article_id


async def list_for_article(
    session: AsyncSession, slug: str, viewer_id: int | None, limit: int, offset: int
) -> list[CommentOut]:
    article_id = await _article_id(session, slug)
    return await repository.for_article(session, article_id, viewer_id, limit, offset)


async def add(session: AsyncSession, author: User, slug: str, data: NewComment) -> CommentOut:
    await begin_write(session)
    article, owner = await article_service.with_author(session, slug)
    now = utcnow()
    comment = Comment(
        body=data.body, article_id=article.id, author_id=author.id, created_at=now, updated_at=now
    )
    session.add(comment)
    await session.flush()
    await notifications.on_comment(
        session,
        comment_id=comment.id,
        actor=author.username,
        actor_id=author.id,
        owner=owner,
        title=article.title,
        slug=article.slug,
        body=comment.body,
    )
    out = CommentOut(
        id=comment.id,
        body=comment.body,
        created_at=comment.created_at,
        updated_at=comment.updated_at,
        author=ProfileOut.of(author),
    )
    await events.comment_created(session, article.slug, out, actor_id=author.id, owner_id=owner.id)
    await session.commit()
    return out


async def delete(session: AsyncSession, user_id: int, slug: str, comment_id: int) -> None:
    await begin_write(session)
    article_id = await _article_id(session, slug)
    comment = await repository.by_id(session, comment_id)
    if comment is None or comment.article_id != article_id:
        raise NotFound("comment")
    if comment.author_id != user_id:
        raise Forbidden("comment", "belongs to another author")
    await repository.delete_by_id(session, comment_id)
    await events.comment_deleted(session, slug, comment_id)
    await session.commit()
