from __future__ import annotations

from asyncpress.core.schemas import Schema


class TagsResponse(Schema):
    tags: list[str]
