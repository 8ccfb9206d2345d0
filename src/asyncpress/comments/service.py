from __future__ import annotations

from datetime import datetime

from asyncpress.articles import repository as articles
from asyncpress.comments import events, posting, repository
from asyncpress.comments.schemas import CommentOut, NewComment
from asyncpress.core.db.base import utcnow
from asyncpress.core.db.engine import Reader
from asyncpress.core.db.references import gone_as
from asyncpress.core.errors import Forbidden, NotFound
from asyncpress.core.uow import Database
from asyncpress.notifications import service as notifications
from asyncpress.profiles.schemas import ProfileOut
from asyncpress.users import repository as users_repository
from asyncpress.users.auth import account_gone
from asyncpress.users.models import User


async def _article_id(reader: Reader, slug: str) -> int:
    article_id = await articles.id_by_slug(reader, slug)
    if article_id is None:
        raise NotFound("article")
    return article_id


class Comments:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def list_for_article(
        self, slug: str, viewer_id: int | None, limit: int, offset: int
    ) -> list[CommentOut]:
        async with self.db.reading() as reader:
            page = await repository.page_by_slug(reader, slug, viewer_id, limit, offset)
            if page is not None:
                return page
            article_id = await _article_id(reader, slug)
            return await repository.for_article(reader, article_id, viewer_id, limit, offset)

    async def add(self, author_id: int, slug: str, data: NewComment) -> CommentOut:
        if self.db.engine.dialect.name == "postgresql":
            return await self._add_at_once(author_id, slug, data)
        async with self.db.write() as uow:
            author = await users_repository.read(uow.session, author_id)
            if author is None:
                raise account_gone()
            article, owner = await _commented(uow.session, slug)
            now = utcnow()
            with gone_as(NotFound("article")):  # deleted since it was read
                comment_id = await repository.add(
                    uow.session, article.id, author.id, data.body, now
                )
            await notifications.queue(uow, _mail(comment_id, author, owner, article, data))
            out = _shown(comment_id, author, data, now)
            await events.created(uow, article.slug, out, actor_id=author.id, owner_id=owner.id)
            await uow.commit()
        return out

    async def _add_at_once(self, author_id: int, slug: str, data: NewComment) -> CommentOut:
        """``add`` on PostgreSQL: one read (the article, its author and the caller),
        then one statement (comments.posting)."""
        async with self.db.write_at_once() as work:
            found = await articles.with_author_and_actor(work.connection, slug, author_id)
            if found is None:
                raise NotFound("article")
            article, owner, author = found
            if author is None:
                raise account_gone()
            now = utcnow()
            out = _shown(0, author, data, now)  # the id is given by the statement
            # The statement makes the mail's key from the comment's id.
            message = _mail(0, author, owner, article, data)
            with gone_as(NotFound("article")):  # deleted since it was read
                out.id = await posting.post(
                    work,
                    article_id=article.id,
                    author_id=author.id,
                    slug=article.slug,
                    comment=out,
                    now=now,
                    channels=events.created_channels(
                        article.slug, actor_id=author.id, owner_id=owner.id
                    ),
                    message=message,
                )
            await work.commit()
        return out

    async def delete(self, user_id: int, slug: str, comment_id: int) -> None:
        async with self.db.write() as uow:
            article_id = await _article_id(uow.session, slug)
            comment = await repository.by_id(uow.session, comment_id)
            if comment is None or comment.article_id != article_id:
                raise NotFound("comment")
            if comment.author_id != user_id:
                raise Forbidden("comment", "belongs to another author")
            await repository.delete_by_id(uow.session, comment_id)
            await events.deleted(uow, slug, comment_id)
            await uow.commit()


async def _commented(reader: Reader, slug: str) -> tuple[articles.Target, User]:
    """The article a comment is for, and its author (whom the mail goes to)."""
    found = await articles.with_author(reader, slug)
    if found is None:
        raise NotFound("article")
    return found


def _shown(comment_id: int, author: User, data: NewComment, now: datetime) -> CommentOut:
    return CommentOut(
        id=comment_id,
        body=data.body,
        created_at=now,
        updated_at=now,
        author=ProfileOut.of(author),
    )


def _mail(
    comment_id: int, author: User, owner: User, article: articles.Target, data: NewComment
) -> notifications.Message | None:
    return notifications.comment_message(
        comment_id=comment_id,
        actor=author.username,
        actor_id=author.id,
        owner=owner,
        title=article.title,
        slug=article.slug,
        body=data.body,
    )
