"""Operational endpoints: health and Prometheus metrics."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text

from asyncpress.core.uow import Database
from asyncpress.core.web import provided
from asyncpress.ops.metrics import Metrics

router = APIRouter(tags=["Operations"])

DatabaseDep = Annotated[Database, provided(Database)]


@router.get("/api/health")
async def health(db: DatabaseDep) -> dict[str, str]:
    async with db.session() as session:
        await session.execute(text("SELECT 1"))
    return {"status": "ok"}


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(collected: Annotated[Metrics, provided(Metrics)]) -> Response:
    """Prometheus text format (asyncpress.ops.metrics): every worker's figures."""
    return Response(await collected.scrape(), media_type=CONTENT_TYPE_LATEST)
