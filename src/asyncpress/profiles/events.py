"""What follows and unfollows tell live streams."""

from __future__ import annotations

from typing import Any

from asyncpress.core.uow import UnitOfWork
from asyncpress.events import journal
from asyncpress.events.channels import user_channel
from asyncpress.profiles.schemas import ProfileOut
from asyncpress.users.models import User


def neutral_profile(user: User) -> dict[str, Any]:
    """The profile as every receiver sees it (``following`` is the viewer's own: false)."""
    dumped: dict[str, Any] = ProfileOut.of(user).model_dump(mode="json", by_alias=True)
    return dumped


FOLLOWED = "profile.followed"


def followed_payload(follower: User, followee: User) -> dict[str, Any]:
    return {"profile": neutral_profile(follower), "followee": neutral_profile(followee)}


async def followed(uow: UnitOfWork, follower: User, followee: User) -> None:
    await journal.append(
        uow, FOLLOWED, followed_payload(follower, followee), [user_channel(followee.id)]
    )
