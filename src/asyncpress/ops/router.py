"""Operational endpoints: health and Prometheus metrics."""

from __future__ import annotations

from collections import Counter

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse
from sqlalchemy import text

from asyncpress.articles import export
from asyncpress.deps import ResourcesDep, SessionDep
from asyncpress.notifications import repository as outbox

router = APIRouter(tags=["Operations"])


@router.get("/api/health")
async def health(session: SessionDep) -> dict[str, str]:
    await session.execute(text("SELECT 1"))
    return {"status": "ok"}


def _lines(name: str, kind: str, help_text: str, samples: dict[str, int]) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    lines.extend(f"{name}{labels} {value}" for labels, value in samples.items())
    return lines


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(session: SessionDep, resources: ResourcesDep) -> PlainTextResponse:
    """Prometheus text format.

    Outbox figures come from the database, so every process reports the same
    totals; ``…_process_…`` counters are this process's own deliveries.
    """
    # Read before this request's own session takes a connection.
    checked_out = int(getattr(resources.engine.pool, "checkedout", lambda: 0)())
    stats = await outbox.stats(session)
    counters = resources.outbox.counters
    hub = resources.events
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
            "Events handed to this process's streams, streams dropped as too slow, "
            "and wake-ups published to Redis.",
            {f'{{what="{k}"}}': v for k, v in hub.counters.items()},
        ),
    ]
    return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")
