"""What article writes tell live streams, shaped as the REST API shapes them.

Payloads are the same for every receiver, so viewer-specific flags
(``favorited``, ``following``) are always false in them.
"""

from __future__ import annotations

from typing import Any

from asyncpress.articles.repository import ArticleRecord
from asyncpress.articles.schemas import ArticleListItem
from asyncpress.core.uow import UnitOfWork
from asyncpress.events import journal
from asyncpress.events.channels import GLOBAL, article_channel, feed_channel, user_channel
from asyncpress.profiles.events import neutral_profile
from asyncpress.users.models import User


def neutral_article(record: ArticleRecord) -> dict[str, Any]:
    item = ArticleListItem.model_validate(record)
    item.favorited = False
    item.author = item.author.model_copy(update={"following": False})
    dumped: dict[str, Any] = item.model_dump(mode="json", by_alias=True)
    return dumped


CREATED = "article.created"


def created_payload(article: ArticleRecord) -> dict[str, Any]:
    return {"article": neutral_article(article)}


def created_channels(article: ArticleRecord, author_id: int) -> list[str]:
    return [GLOBAL, article_channel(article.slug), feed_channel(author_id)]


async def created(uow: UnitOfWork, article: ArticleRecord, author_id: int) -> None:
    await journal.append(
        uow, CREATED, created_payload(article), created_channels(article, author_id)
    )


async def updated(uow: UnitOfWork, article: ArticleRecord, old_slug: str) -> None:
    # A new title means a new slug: watchers of either name hear of it.
    await journal.append(
        uow,
        "article.updated",
        {"article": neutral_article(article)},
        [GLOBAL, article_channel(old_slug), article_channel(article.slug)],
    )


async def deleted(uow: UnitOfWork, article: ArticleRecord) -> None:
    await journal.append(
        uow,
        "article.deleted",
        {"article": neutral_article(article)},
        [GLOBAL, article_channel(article.slug)],
    )


def favorite_type(favorite: bool) -> str:
    return "article.favorited" if favorite else "article.unfavorited"


def favorite_payload(article: ArticleRecord, actor: User) -> dict[str, Any]:
    return {"article": neutral_article(article), "profile": neutral_profile(actor)}


def favorite_channels(article: ArticleRecord) -> list[str]:
    """Where a favorite goes, but for its author's ``user`` channel (see below)."""
    return [GLOBAL, article_channel(article.slug)]


async def favorite_changed(
    uow: UnitOfWork, article: ArticleRecord, *, actor: User, owner_id: int, favorite: bool
) -> None:
    channels = favorite_channels(article)
    if favorite and actor.id != owner_id:  # your own actions never reach your `user` channel
        channels.append(user_channel(owner_id))
    await journal.append(uow, favorite_type(favorite), favorite_payload(article, actor), channels)
