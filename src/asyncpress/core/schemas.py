"""The one schema base: camelCase on the wire, snake_case in Python."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, PlainSerializer, field_validator
from pydantic.alias_generators import to_camel


def iso_millis(value: datetime) -> str:
    """``2016-02-18T03:22:56.637Z``: UTC, milliseconds, ``Z``."""
    # isoformat is cheaper than strftime plus formatting (this runs for every
    # timestamp of every response); it truncates to milliseconds, and a UTC
    # time ends in "+00:00".
    return value.astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


Timestamp = Annotated[datetime, PlainSerializer(iso_millis, return_type=str)]


# The largest values the id and counter columns hold on every backend
# (PostgreSQL INTEGER and BIGINT); every integer a client sends is bounded
# by one of them, so none reaches a driver that cannot bind it.
MAX_INT32 = 2**31 - 1
MAX_INT64 = 2**63 - 1


class Schema(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        from_attributes=True,
    )


NUL_MESSAGE = "must not contain NUL characters"
# For fields stripped of whitespace that must not end up blank: stated in the
# schema so a client (or a fuzzer) can tell a blank value from a valid one.
NON_BLANK = r"^[^\x00]*[^\s\x00][^\x00]*$"


def _has_nul(value: object) -> bool:
    # Nested models check their own fields (and name them in the error).
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list | tuple):
        return any(isinstance(item, str) and "\x00" in item for item in value)
    return False


class Input(Schema):
    """A request body: no string in it may hold a NUL character.

    PostgreSQL cannot store NUL in text and SQLite would keep it; both
    backends refuse it the same way, as a 422 naming the field.
    """

    @field_validator("*", mode="before")
    @classmethod
    def _refuse_nul(cls, value: object) -> object:
        if _has_nul(value):
            raise ValueError(NUL_MESSAGE)
        return value
