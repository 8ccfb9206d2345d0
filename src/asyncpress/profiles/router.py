from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from asyncpress.core.web import provided
from asyncpress.profiles.schemas import ProfileResponse
from asyncpress.profiles.service import Profiles
from asyncpress.users.auth import AuthUserId, ViewerId

router = APIRouter(prefix="/api/profiles", tags=["Profile"])

ProfilesDep = Annotated[Profiles, provided(Profiles)]


@router.get("/{username}", response_model=ProfileResponse)
async def get_profile(username: str, profiles: ProfilesDep, viewer_id: ViewerId) -> ProfileResponse:
    return ProfileResponse(profile=await profiles.get(username, viewer_id))


@router.post("/{username}/follow", response_model=ProfileResponse)
async def follow(username: str, profiles: ProfilesDep, user_id: AuthUserId) -> ProfileResponse:
    return ProfileResponse(profile=await profiles.set_following(user_id, username, follow=True))


@router.delete("/{username}/follow", response_model=ProfileResponse)
async def unfollow(username: str, profiles: ProfilesDep, user_id: AuthUserId) -> ProfileResponse:
    return ProfileResponse(profile=await profiles.set_following(user_id, username, follow=False))
