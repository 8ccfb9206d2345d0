"""The one schema base: camelCase on the wire, snake_case in Python."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, PlainSerializer
from pydantic.alias_generators import to_camel


def iso_millis(value: datetime) -> str:
    """``2016-02-18T03:22:56.637Z``: UTC, milliseconds, ``Z``."""
    # isoformat: 1.3 µs against 2.3 µs for strftime plus formatting (timeit);
    # it truncates to milliseconds, and a UTC time ends in "+00:00".
    return value.astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


Timestamp = Annotated[datetime, PlainSerializer(iso_millis, return_type=str)]


class Schema(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        from_attributes=True,
    )
