"""Operational endpoints: health and Prometheus metrics."""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Mapping
from typing import Annotated

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse
from sqlalchemy import text

from asyncpress.articles import export
from asyncpress.core.uow import Database
from asyncpress.core.web import provided
from asyncpress.events.hub import Hub
from asyncpress.fast.gc_pauses import GENERATIONS, PAUSES
from asyncpress.notifications import repository as outbox
from asyncpress.notifications.delivery import Outbox

router = APIRouter(tags=["Operations"])

DatabaseDep = Annotated[Database, provided(Database)]


@router.get("/api/health")
async def health(db: DatabaseDep) -> dict[str, str]:
    async with db.session() as session:
        await session.execute(text("SELECT 1"))
    return {"status": "ok"}


def _lines(name: str, kind: str, help_text: str, samples: Mapping[str, float]) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    lines.extend(f"{name}{labels} {value}" for labels, value in samples.items())
    return lines


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(
    db: DatabaseDep,
    sender: Annotated[Outbox, provided(Outbox)],
    hub: Annotated[Hub, provided(Hub)],
) -> PlainTextResponse:
    """Prometheus text format.

    Outbox figures come from the database, so every process reports the same
    totals; ``…_process_…`` counters are this process's own deliveries.
    """
    # Read before this request's own session takes a connection.
    checked_out = int(getattr(db.engine.pool, "checkedout", lambda: 0)())
    async with db.session() as session:
        stats = await outbox.stats(session)
    counters = sender.counters
    kinds = Counter(conn.kind for conn in hub.connections)
    lines = [
        *_lines(
            "asyncpress_outbox_messages",
            "gauge",
            "Outbox messages by status.",
            {f'{{status="{s}"}}': stats[s] for s in ("pending", "sending", "sent", "dead")},
        ),
        *_lines(
            "asyncpress_outbox_depth",
            "gauge",
            "Messages waiting to be delivered.",
            {"": stats["depth"]},
        ),
        *_lines(
            "asyncpress_outbox_retried_messages",
            "gauge",
            "Messages that needed more than one attempt.",
            {"": stats["retried"]},
        ),
        *_lines(
            "asyncpress_outbox_failed_attempts",
            "gauge",
            "Delivery attempts that failed.",
            {"": stats["failed_attempts"]},
        ),
        *_lines(
            "asyncpress_db_pool_checked_out",
            "gauge",
            "Database connections in use by this process.",
            {"": checked_out},
        ),
        *_lines(
            "asyncpress_export_rows_total",
            "counter",
            "Articles this process has streamed out by export.",
            {"": export.exported_rows},
        ),
        *_lines(
            "asyncpress_outbox_process_deliveries_total",
            "counter",
            "Deliveries attempted by this process, by result.",
            {f'{{result="{r}"}}': counters[r] for r in ("sent", "failed", "retried", "dead")},
        ),
        *_lines(
            "asyncpress_events_connections",
            "gauge",
            "Open event streams on this process, by protocol.",
            {f'{{protocol="{k}"}}': kinds.get(k, 0) for k in ("ws", "sse")},
        ),
        *_lines(
            "asyncpress_events_cursor",
            "gauge",
            "Id of the last logged event this process has routed.",
            {"": hub.cursor},
        ),
        *_lines(
            "asyncpress_events_redis_connected",
            "gauge",
            "1 while this process receives event wake-ups through Redis.",
            {"": int(hub.redis_connected)},
        ),
        *_lines(
            "asyncpress_events_process_total",
            "counter",
            "Events handed to this process's streams (direct: of those, written straight "
            "to an idle stream's socket), streams dropped as too slow, "
            "and wake-ups published to Redis.",
            {f'{{what="{k}"}}': v for k, v in hub.counters.items()},
        ),
        *_lines(
            "asyncpress_gc_collections_total",
            "counter",
            "Runs of the cycle collector in this process, by generation (2: full).",
            {f'{{generation="{g}"}}': PAUSES.collections[g] for g in GENERATIONS},
        ),
        *_lines(
            "asyncpress_gc_pause_seconds_total",
            "counter",
            "Time the cycle collector stopped this process, by generation.",
            {f'{{generation="{g}"}}': PAUSES.seconds[g] for g in GENERATIONS},
        ),
        *_lines(
            "asyncpress_gc_pause_seconds_max",
            "gauge",
            "Longest single collection since the process started, by generation.",
            {f'{{generation="{g}"}}': PAUSES.longest[g] for g in GENERATIONS},
        ),
        *_lines(
            "asyncpress_gc_frozen_objects",
            "gauge",
            "Objects this process has frozen out of garbage collection (GC_FREEZE).",
            {"": gc.get_freeze_count()},
        ),
        *_lines(
            "asyncpress_gc_policy_total",
            "counter",
            "Freezes after bursts of new streams, and thaws after closes (GC_FREEZE).",
            {
                f'{{what="{k}"}}': v
                for k, v in (
                    hub.collector.counters if hub.collector else {"freezes": 0, "thaws": 0}
                ).items()
            },
        ),
    ]
    return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")
