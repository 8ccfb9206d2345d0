from __future__ import annotations

from asyncpress.schemas import Schema


class ProfileOut(Schema):
    username: str
    bio: str
    image: str | None
    following: bool


class ProfileResponse(Schema):
    profile: ProfileOut
