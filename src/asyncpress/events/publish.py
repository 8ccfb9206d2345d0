"""What each write records in the event log, shaped as the REST API shapes it.

Payloads are the same for every receiver, so viewer-specific flags
(``favorited``, ``following``) are always false in them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from asyncpress.articles.repository import ArticleRecord
from asyncpress.articles.schemas import ArticleListItem
from asyncpress.comments.schemas import CommentOut
from asyncpress.events.log import record
from asyncpress.profiles.schemas import ProfileOut
from asyncpress.users.models import User

GLOBAL = "global"


def article_channel(slug: str) -> str:
    return f"article:{slug}"


def user_channel(user_id: int) -> str:
    return f"user:{user_id}"


def feed_channel(author_id: int) -> str:
    return f"feed:{author_id}"


def _json(model: Any) -> dict[str, Any]:
    dumped: dict[str, Any] = model.model_dump(mode="json", by_alias=True)
    return dumped


def neutral_article(record_: ArticleRecord) -> dict[str, Any]:
    item = ArticleListItem.model_validate(record_)
    item.favorited = False
    item.author = item.author.model_copy(update={"following": False})
    return _json(item)


def neutral_profile(user: User) -> dict[str, Any]:
    return _json(ProfileOut.of(user))


async def article_created(session: AsyncSession, article: ArticleRecord, author_id: int) -> None:
    await record(
        session,
        "article.created",
        {"article": neutral_article(article)},
        [GLOBAL, article_channel(article.slug), feed_channel(author_id)],
    )


async def article_updated(session: AsyncSession, article: ArticleRecord, old_slug: str) -> None:
    # A new title means a new slug: watchers of either name hear of it.
    await record(
        session,
        "article.updated",
        {"article": neutral_article(article)},
        [GLOBAL, article_channel(old_slug), article_channel(article.slug)],
    )


async def article_deleted(session: AsyncSession, article: ArticleRecord) -> None:
    await record(
        session,
        "article.deleted",
        {"article": neutral_article(article)},
        [GLOBAL, article_channel(article.slug)],
    )


async def favorite_changed(
    session: AsyncSession, article: ArticleRecord, *, actor: User, owner_id: int, favorite: bool
) -> None:
    channels = [GLOBAL, article_channel(article.slug)]
    if favorite and actor.id != owner_id:  # your own actions never reach your `user` channel
        channels.append(user_channel(owner_id))
    await record(
        session,
        "article.favorited" if favorite else "article.unfavorited",
        {"article": neutral_article(article), "profile": neutral_profile(actor)},
        channels,
    )


async def comment_created(
    session: AsyncSession, slug: str, comment: CommentOut, *, actor_id: int, owner_id: int
) -> None:
    channels = [article_channel(slug)]
    if actor_id != owner_id:
        channels.append(user_channel(owner_id))
    neutral = comment.model_copy(
        update={"author": comment.author.model_copy(update={"following": False})}
    )
    await record(session, "comment.created", {"slug": slug, "comment": _json(neutral)}, channels)


async def comment_deleted(session: AsyncSession, slug: str, comment_id: int) -> None:
    await record(
        session,
        "comment.deleted",
        {"slug": slug, "comment": {"id": comment_id}},
        [article_channel(slug)],
    )


async def followed(session: AsyncSession, follower: User, followee: User) -> None:
    await record(
        session,
        "profile.followed",
        {"profile": neutral_profile(follower), "followee": neutral_profile(followee)},
        [user_channel(followee.id)],
    )
