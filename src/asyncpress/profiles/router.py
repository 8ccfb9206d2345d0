from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks

from asyncpress.articles import counts
from asyncpress.deps import CurrentUser, ResourcesDep, SessionDep, ViewerId
from asyncpress.profiles import service
from asyncpress.profiles.schemas import ProfileResponse

router = APIRouter(prefix="/profiles", tags=["Profile"])


@router.get("/{username}", response_model=ProfileResponse)
async def get_profile(username: str, session: SessionDep, viewer_id: ViewerId) -> ProfileResponse:
    return ProfileResponse(profile=await service.get(session, username, viewer_id))


@router.post("/{username}/follow", response_model=ProfileResponse)
async def follow(
    username: str,
    session: SessionDep,
    user: CurrentUser,
    resources: ResourcesDep,
    background: BackgroundTasks,
) -> ProfileResponse:
    profile = await service.set_following(session, user, username, follow=True)
    await counts.changed(resources.cache)  # the follower's feed
    background.add_task(resources.outbox.kick)
    return ProfileResponse(profile=profile)


@router.delete("/{username}/follow", response_model=ProfileResponse)
async def unfollow(
    username: str, session: SessionDep, user: CurrentUser, resources: ResourcesDep
) -> ProfileResponse:
    profile = await service.set_following(session, user, username, follow=False)
    await counts.changed(resources.cache)
    return ProfileResponse(profile=profile)
