from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from asyncpress.articles import service as articles
from asyncpress.db import release
from asyncpress.deps import ResourcesDep, SessionDep, ViewerId
from asyncpress.errors import AppError, Invalid
from asyncpress.previews.service import links_in
from asyncpress.previews.ssrf import PreviewFailed
from asyncpress.schemas import Schema

router = APIRouter(tags=["Link previews"])


class BadGateway(AppError):
    status_code = 502


class GatewayTimeout(AppError):
    status_code = 504


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


@router.get("/link-preview", response_model=PreviewResponse)
async def link_preview(
    resources: ResourcesDep,
    url: Annotated[
        str, Query(min_length=1, max_length=2048, pattern=r"^[Hh][Tt][Tt][Pp][Ss]?://[^\x00]+$")
    ],
) -> PreviewResponse:
    """Title, description, image and site name of a public web page."""
    try:
        preview = await resources.previews.one(url)
    except PreviewFailed as exc:
        kind = {422: Invalid, 504: GatewayTimeout}.get(exc.status, BadGateway)
        raise kind("url", str(exc)) from exc
    return PreviewResponse(preview=PreviewOut.model_validate(preview))


@router.get("/articles/{slug}/previews", response_model=PreviewsResponse, tags=["Articles"])
async def article_previews(
    slug: str, session: SessionDep, viewer_id: ViewerId, resources: ResourcesDep
) -> PreviewsResponse:
    """Previews of the links in the article's body (at most 20), fetched concurrently."""
    record = await articles.get(session, slug, viewer_id)
    await release(session)  # no connection held while pages are fetched
    previews, failed = await resources.previews.many(links_in(record.body or ""))
    return PreviewsResponse(
        previews=[PreviewOut.model_validate(p) for p in previews],
        failed=[PreviewFailureOut.model_validate(f) for f in failed],
    )
