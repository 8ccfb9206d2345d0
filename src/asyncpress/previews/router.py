from __future__ import annotations

from typing import Annotated

import httpx
from fastapi import APIRouter, Query

from asyncpress.articles import service as articles
from asyncpress.db import release
from asyncpress.deps import ResourcesDep, SessionDep, ViewerId
from asyncpress.errors import AppError, Invalid
from asyncpress.previews.fetch import UpstreamFailed
from asyncpress.previews.service import links_in
from asyncpress.previews.ssrf import Refused
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


class PreviewsResponse(Schema):
    previews: list[PreviewOut]


@router.get("/link-preview", response_model=PreviewResponse)
async def link_preview(
    resources: ResourcesDep, url: Annotated[str, Query(min_length=1, max_length=2048)]
) -> PreviewResponse:
    """Title, description, image and site name of a public web page."""
    try:
        preview = await resources.previews.one(url)
    except Refused as exc:
        raise Invalid("url", str(exc)) from exc
    except UpstreamFailed as exc:
        raise BadGateway("url", str(exc)) from exc
    except (TimeoutError, httpx.TimeoutException) as exc:
        raise GatewayTimeout("url", "the page did not answer in time") from exc
    except httpx.HTTPError as exc:
        raise BadGateway("url", f"could not be fetched ({type(exc).__name__})") from exc
    return PreviewResponse(preview=PreviewOut.model_validate(preview))


@router.get("/articles/{slug}/previews", response_model=PreviewsResponse, tags=["Articles"])
async def article_previews(
    slug: str, session: SessionDep, viewer_id: ViewerId, resources: ResourcesDep
) -> PreviewsResponse:
    """Previews of the links in the article's body (at most 20), fetched concurrently."""
    record = await articles.get(session, slug, viewer_id)
    await release(session)  # no connection held while pages are fetched
    previews = await resources.previews.many(links_in(record.body or ""))
    return PreviewsResponse(previews=[PreviewOut.model_validate(p) for p in previews])
