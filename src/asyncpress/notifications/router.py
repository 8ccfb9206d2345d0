from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body

from asyncpress.deps import CurrentUser, SessionDep
from asyncpress.notifications import service
from asyncpress.notifications.schemas import PreferencesRequest, PreferencesResponse

router = APIRouter(prefix="/user/notifications", tags=["Notifications"])


@router.get("", response_model=PreferencesResponse)
async def get_preferences(user: CurrentUser) -> PreferencesResponse:
    return PreferencesResponse(notifications=service.preferences_of(user))


@router.put("", response_model=PreferencesResponse)
async def update_preferences(
    body: Annotated[PreferencesRequest, Body()], session: SessionDep, user: CurrentUser
) -> PreferencesResponse:
    preferences = await service.update_preferences(session, user.id, body.notifications)
    return PreferencesResponse(notifications=preferences)
