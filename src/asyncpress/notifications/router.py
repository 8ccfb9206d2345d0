from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body

from asyncpress.core.web import provided
from asyncpress.notifications import service
from asyncpress.notifications.schemas import PreferencesRequest, PreferencesResponse
from asyncpress.notifications.service import NotificationPreferences
from asyncpress.users.auth import CurrentUser

router = APIRouter(prefix="/api/user/notifications", tags=["Notifications"])


@router.get("", response_model=PreferencesResponse)
async def get_preferences(user: CurrentUser) -> PreferencesResponse:
    return PreferencesResponse(notifications=service.preferences_of(user))


@router.put("", response_model=PreferencesResponse)
async def update_preferences(
    body: Annotated[PreferencesRequest, Body()],
    preferences_of: Annotated[NotificationPreferences, provided(NotificationPreferences)],
    user: CurrentUser,
) -> PreferencesResponse:
    preferences = await preferences_of.update(user.id, body.notifications)
    return PreferencesResponse(notifications=preferences)
