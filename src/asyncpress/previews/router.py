from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from asyncpress.articles.service import Articles
from asyncpress.core.errors import BadGateway, GatewayTimeout, Invalid
from asyncpress.core.web import provided
from asyncpress.previews.schemas import (
    PreviewFailureOut,
    PreviewOut,
    PreviewResponse,
    PreviewsResponse,
)
from asyncpress.previews.service import Previews, links_in
from asyncpress.previews.ssrf import PreviewFailed
from asyncpress.users.auth import ViewerId

router = APIRouter(prefix="/api", tags=["Link previews"])

PreviewsDep = Annotated[Previews, provided(Previews)]


@router.get("/link-preview", response_model=PreviewResponse)
async def link_preview(
    previews: PreviewsDep,
    url: Annotated[
        str, Query(min_length=1, max_length=2048, pattern=r"^[Hh][Tt][Tt][Pp][Ss]?://[^\x00]+$")
    ],
) -> PreviewResponse:
    """Title, description, image and site name of a public web page."""
    try:
        preview = await previews.one(url)
    except PreviewFailed as exc:
        kind = {422: Invalid, 504: GatewayTimeout}.get(exc.status, BadGateway)
        raise kind("url", str(exc)) from exc
    return PreviewResponse(preview=PreviewOut.model_validate(preview))


@router.get("/articles/{slug}/previews", response_model=PreviewsResponse, tags=["Articles"])
async def article_previews(
    slug: str,
    articles: Annotated[Articles, provided(Articles)],
    previews: PreviewsDep,
    viewer_id: ViewerId,
) -> PreviewsResponse:
    """Previews of the links in the article's body (at most 20), fetched concurrently."""
    record = await articles.get(slug, viewer_id)  # its session is closed before any fetch
    found, failed = await previews.many(links_in(record.body or ""))
    return PreviewsResponse(
        previews=[PreviewOut.model_validate(p) for p in found],
        failed=[PreviewFailureOut.model_validate(f) for f in failed],
    )
