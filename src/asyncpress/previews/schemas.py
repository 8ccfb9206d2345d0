from __future__ import annotations

from asyncpress.core.schemas import Schema


class PreviewOut(Schema):
    url: str
    title: str | None
    description: str | None
    image: str | None
    site_name: str | None


class PreviewResponse(Schema):
    preview: PreviewOut


class PreviewFailureOut(Schema):
    url: str
    status: int
    error: str


class PreviewsResponse(Schema):
    previews: list[PreviewOut]
    # Links that could not be previewed, each with the status a single
    # preview of it would answer (422, 502 or 504) and why.
    failed: list[PreviewFailureOut]
