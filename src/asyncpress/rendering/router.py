from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body
from pydantic import StringConstraints

from asyncpress.articles.service import Articles
from asyncpress.core.schemas import Input, Schema
from asyncpress.core.web import provided
from asyncpress.rendering.markdown import MAX_MARKDOWN_CHARS
from asyncpress.rendering.pool import Renderer
from asyncpress.users.auth import ViewerId

router = APIRouter(prefix="/api", tags=["Rendering"])

RendererDep = Annotated[Renderer, provided(Renderer)]


class RenderRequest(Input):
    markdown: Annotated[str, StringConstraints(max_length=MAX_MARKDOWN_CHARS)]


class RenderResponse(Schema):
    html: str


@router.post("/render", response_model=RenderResponse)
async def render(body: Annotated[RenderRequest, Body()], renderer: RendererDep) -> RenderResponse:
    """Markdown as safe HTML, rendered in a worker process (see docs/operations.md)."""
    return RenderResponse(html=await renderer.html(body.markdown))


@router.get("/articles/{slug}/html", response_model=RenderResponse, tags=["Articles"])
async def article_html(
    slug: str,
    articles: Annotated[Articles, provided(Articles)],
    renderer: RendererDep,
    viewer_id: ViewerId,
) -> RenderResponse:
    """The article's body as safe HTML, rendered in a worker process."""
    record = await articles.get(slug, viewer_id)  # its session is closed before rendering
    return RenderResponse(html=await renderer.html(record.body or ""))
