"""What comment writes tell live streams."""

from __future__ import annotations

from typing import Any

from asyncpress.comments.schemas import CommentOut
from asyncpress.core.uow import UnitOfWork
from asyncpress.events import journal
from asyncpress.events.channels import article_channel, user_channel

CREATED = "comment.created"


def created_channels(slug: str, *, actor_id: int, owner_id: int) -> list[str]:
    channels = [article_channel(slug)]
    if actor_id != owner_id:  # your own actions never reach your `user` channel
        channels.append(user_channel(owner_id))
    return channels


def created_payload(slug: str, comment: CommentOut) -> dict[str, Any]:
    neutral = comment.model_copy(
        update={"author": comment.author.model_copy(update={"following": False})}
    )
    return {"slug": slug, "comment": neutral.model_dump(mode="json", by_alias=True)}


async def created(
    uow: UnitOfWork, slug: str, comment: CommentOut, *, actor_id: int, owner_id: int
) -> None:
    channels = created_channels(slug, actor_id=actor_id, owner_id=owner_id)
    await journal.append(uow, CREATED, created_payload(slug, comment), channels)


async def deleted(uow: UnitOfWork, slug: str, comment_id: int) -> None:
    await journal.append(
        uow,
        "comment.deleted",
        {"slug": slug, "comment": {"id": comment_id}},
        [article_channel(slug)],
    )
