from __future__ import annotations

from typing import TYPE_CHECKING

from asyncpress.core.schemas import Schema

if TYPE_CHECKING:
    from asyncpress.users.models import User


class ProfileOut(Schema):
    username: str
    bio: str
    image: str | None
    following: bool

    @classmethod
    def of(cls, user: User, *, following: bool = False) -> ProfileOut:
        return cls(username=user.username, bio=user.bio, image=user.image, following=following)


class ProfileResponse(Schema):
    profile: ProfileOut
