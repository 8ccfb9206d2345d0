"""The one schema base: camelCase on the wire, snake_case in Python."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, PlainSerializer, StringConstraints
from pydantic.alias_generators import to_camel


def iso_millis(value: datetime) -> str:
    """``2016-02-18T03:22:56.637Z``: UTC, milliseconds, ``Z``."""
    return (
        value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    )


Timestamp = Annotated[datetime, PlainSerializer(iso_millis, return_type=str)]


def text(max_length: int) -> object:
    """A required string: surrounding white space trimmed, blank refused."""
    return StringConstraints(strip_whitespace=True, min_length=1, max_length=max_length)


class Schema(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        from_attributes=True,
    )
