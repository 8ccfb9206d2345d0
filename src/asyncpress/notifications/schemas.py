from __future__ import annotations

from pydantic import ConfigDict, StrictBool

from asyncpress.core.schemas import Input, Schema


class Preferences(Schema):
    comment_on_my_article: StrictBool
    new_follower: StrictBool
    favorite_of_my_article: StrictBool


class PreferencesUpdate(Input):
    model_config = ConfigDict(extra="forbid")

    comment_on_my_article: StrictBool | None = None
    new_follower: StrictBool | None = None
    favorite_of_my_article: StrictBool | None = None


class PreferencesRequest(Input):
    notifications: PreferencesUpdate


class PreferencesResponse(Schema):
    notifications: Preferences
