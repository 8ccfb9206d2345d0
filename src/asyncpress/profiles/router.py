from __future__ import annotations

from fastapi import APIRouter

from asyncpress.deps import CurrentUser, SessionDep, ViewerId
from asyncpress.profiles import service
from asyncpress.profiles.schemas import ProfileResponse

router = APIRouter(prefix="/profiles", tags=["Profile"])


@router.get("/{username}", response_model=ProfileResponse)
async def get_profile(username: str, session: SessionDep, viewer_id: ViewerId) -> ProfileResponse:
    return ProfileResponse(profile=await service.get(session, username, viewer_id))


@router.post("/{username}/follow", response_model=ProfileResponse)
async def follow(username: str, session: SessionDep, user: CurrentUser) -> ProfileResponse:
    profile = await service.set_following(session, user.id, username, follow=True)
    return ProfileResponse(profile=profile)


@router.delete("/{username}/follow", response_model=ProfileResponse)
async def unfollow(username: str, session: SessionDep, user: CurrentUser) -> ProfileResponse:
    profile = await service.set_following(session, user.id, username, follow=False)
    return ProfileResponse(profile=profile)
