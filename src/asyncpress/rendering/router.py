from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body
from pydantic import StringConstraints

from asyncpress.articles import service as articles
from asyncpress.db import release
from asyncpress.deps import ResourcesDep, SessionDep, ViewerId
from asyncpress.rendering.markdown import MAX_MARKDOWN_CHARS
from asyncpress.schemas import Input, Schema

router = APIRouter(tags=["Rendering"])


class RenderRequest(Input):
    markdown: Annotated[str, StringConstraints(max_length=MAX_MARKDOWN_CHARS)]


class RenderResponse(Schema):
    html: str


@router.post("/render", response_model=RenderResponse)
async def render(body: Annotated[RenderRequest, Body()], resources: ResourcesDep) -> RenderResponse:
    """Markdown as safe HTML, rendered in a worker process (see docs/operations.md)."""
    return RenderResponse(html=await resources.renderer.html(body.markdown))


@router.get("/articles/{slug}/html", response_model=RenderResponse, tags=["Articles"])
async def article_html(
    slug: str, session: SessionDep, viewer_id: ViewerId, resources: ResourcesDep
) -> RenderResponse:
    """The article's body as safe HTML, rendered in a worker process."""
    record = await articles.get(session, slug, viewer_id)
    await release(session)  # no connection held while the body renders
    return RenderResponse(html=await resources.renderer.html(record.body or ""))
