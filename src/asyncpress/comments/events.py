"""What comment writes tell live streams."""

from __future__ import annotations

from typing import Any

from asyncpress.comments.schemas import CommentOut
from asyncpress.core.uow import UnitOfWork
from asyncpress.events import journal
from asyncpress.events.channels import article_channel, user_channel


async def created(
    uow: UnitOfWork, slug: str, comment: CommentOut, *, actor_id: int, owner_id: int
) -> None:
    channels = [article_channel(slug)]
    if actor_id != owner_id:
        channels.append(user_channel(owner_id))
    neutral = comment.model_copy(
        update={"author": comment.author.model_copy(update={"following": False})}
    )
    data: dict[str, Any] = {"slug": slug, "comment": neutral.model_dump(mode="json", by_alias=True)}
    await journal.append(uow, "comment.created", data, channels)


async def deleted(uow: UnitOfWork, slug: str, comment_id: int) -> None:
    await journal.append(
        uow,
        "comment.deleted",
        {"slug": slug, "comment": {"id": comment_id}},
        [article_channel(slug)],
    )
