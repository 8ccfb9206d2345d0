from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from asyncpress.core.web import provided
from asyncpress.stats.schemas import Stats, StatsResponse
from asyncpress.stats.service import Dashboard

router = APIRouter(prefix="/api", tags=["Stats"])


@router.get("/stats", response_model=StatsResponse)
async def stats(dashboard: Annotated[Dashboard, provided(Dashboard)]) -> StatsResponse:
    """Site figures, at most ``STATS_CACHE_S`` seconds old."""
    return StatsResponse(stats=Stats.model_validate(await dashboard.figures()))
