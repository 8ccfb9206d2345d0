from __future__ import annotations

from typing import Annotated

import anyio
from anyio.to_thread import run_sync
from fastapi import APIRouter, Body
from pydantic import StringConstraints

from asyncpress.articles import service as articles
from asyncpress.deps import SessionDep, ViewerId
from asyncpress.rendering.markdown import MAX_MARKDOWN_CHARS, to_html
from asyncpress.schemas import Input, Schema

router = APIRouter(tags=["Rendering"])

# Rendering is CPU work in threads; this bounds how many run at once, so a
# burst of renders cannot take every thread of the shared pool.
_render_slots = anyio.CapacityLimiter(4)


class RenderRequest(Input):
    markdown: Annotated[str, StringConstraints(max_length=MAX_MARKDOWN_CHARS)]


class RenderResponse(Schema):
    html: str


@router.post("/render", response_model=RenderResponse)
def render(body: Annotated[RenderRequest, Body()]) -> RenderResponse:
    """A plain ``def`` route: FastAPI runs it in its thread pool, off the event loop."""
    return RenderResponse(html=to_html(body.markdown))


@router.get("/articles/{slug}/html", response_model=RenderResponse, tags=["Articles"])
async def article_html(slug: str, session: SessionDep, viewer_id: ViewerId) -> RenderResponse:
    """The article's body as safe HTML, rendered in a worker thread."""
    record = await articles.get(session, slug, viewer_id)
    html = await run_sync(to_html, record.body or "", limiter=_render_slots)
    return RenderResponse(html=html)
