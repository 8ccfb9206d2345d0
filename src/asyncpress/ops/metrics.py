"""Prometheus metrics through prometheus-client, right when several workers serve one port.

Every HTTP request is counted and timed by method, route template and
status (``asyncpress.ops.request_id`` calls ``observe_request``); the event
loop's lag is sampled; this process's own figures (pool, live-event
streams, deliveries, cache, collector) are published as metrics.

``asyncpress serve --workers N`` (N > 1) points ``PROMETHEUS_MULTIPROC_DIR``
at a fresh folder before it starts the workers: prometheus-client then keeps
each worker's values in memory-mapped files there, and whichever worker
answers a scrape reads them all, so ``/metrics`` through a load balancer
sums the workers (gauges of live figures as the sum, maximum or minimum over
the live workers, as each says). A worker publishes its figures to its file
every ``PUBLISH_S`` and when it answers a scrape. Figures read from the
database (the outbox) are the same whichever process answers, and are
added at scrape time.
"""

from __future__ import annotations

import asyncio
import gc
import os
import time
from collections import Counter as Tally
from collections.abc import Iterator, Mapping
from pathlib import Path

import anyio.to_thread
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from asyncpress.articles import export
from asyncpress.core.cache import Cache
from asyncpress.core.uow import Database
from asyncpress.events.hub import Hub
from asyncpress.fast.gc_pauses import GENERATIONS, PAUSES
from asyncpress.notifications import repository as outbox_rows
from asyncpress.notifications.delivery import Outbox

# Read once, as prometheus-client does when it is imported.
FOLDER = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
PUBLISH_S = 2.0
LAG_SAMPLE_S = 0.5

disable_created_metrics()  # type: ignore[no-untyped-call]  # no ``…_created`` series beside every counter

HTTP_REQUESTS = Counter(
    "asyncpress_http_requests",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
)
HTTP_SECONDS = Histogram(
    "asyncpress_http_request_duration_seconds",
    "Time from a request's arrival to the end of its response, by method and route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0),
)
LOOP_LAG = Histogram(
    "asyncpress_event_loop_lag_seconds",
    f"How late the event loop ran a timer due every {LAG_SAMPLE_S} s: "
    "time it spent on other work without yielding.",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0),
)

# This process's figures, published from the objects that keep them.
POOL = Gauge(
    "asyncpress_db_pool_checked_out",
    "Database connections in use.",
    multiprocess_mode="livesum",
)
STREAMS = Gauge(
    "asyncpress_events_connections",
    "Open live-event streams, by protocol.",
    ["protocol"],
    multiprocess_mode="livesum",
)
CURSOR = Gauge(
    "asyncpress_events_cursor",
    "Id of the last logged event routed (the most advanced process).",
    multiprocess_mode="livemax",
)
REDIS_LINK = Gauge(
    "asyncpress_events_redis_connected",
    "1 while every process receives event wake-ups through Redis.",
    multiprocess_mode="livemin",
)
FROZEN = Gauge(
    "asyncpress_gc_frozen_objects",
    "Objects frozen out of garbage collection (GC_FREEZE).",
    multiprocess_mode="livesum",
)
LONGEST_PAUSE = Gauge(
    "asyncpress_gc_pause_seconds_max",
    "Longest single collection of a live process, by generation.",
    ["generation"],
    multiprocess_mode="livemax",
)
EXPORTED = Counter("asyncpress_export_rows", "Articles streamed out by export.")
DELIVERIES = Counter(
    "asyncpress_outbox_process_deliveries",
    "Deliveries attempted by the serving processes, by result.",
    ["result"],
)
EVENTS = Counter(
    "asyncpress_events_process",
    "Events handed to streams (direct: of those, written straight to an idle stream's "
    "socket), streams dropped as too slow, and wake-ups published to Redis.",
    ["what"],
)
CACHE = Counter(
    "asyncpress_cache_requests",
    "Cache lookups, by result (computed: a miss this process read from the database; "
    "joined: a miss that waited for a read already running).",
    ["result"],
)
COLLECTIONS = Counter(
    "asyncpress_gc_collections",
    "Runs of the cycle collector, by generation (2: full).",
    ["generation"],
)
PAUSED = Counter(
    "asyncpress_gc_pause_seconds",
    "Time the cycle collector stopped its process, by generation.",
    ["generation"],
)
GC_POLICY = Counter(
    "asyncpress_gc_policy",
    "Freezes after bursts of new streams, and thaws after closes (GC_FREEZE).",
    ["what"],
)


# The methods counted by name; a client may send any token as its method,
# and each would otherwise be a new series (and a new entry below).
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Each label set's children, found once: ``labels()`` checks and joins its
# arguments under a lock on every call. Bounded by routes x methods x statuses
# (unmatched paths share one label).
_counted: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}


def observe_request(method: str, route: str | None, status: int, seconds: float) -> None:
    """Count one answered HTTP request (routes outside the API's are one label)."""
    key = (method if method in _METHODS else "OTHER", route or "unmatched", status)
    children = _counted.get(key)
    if children is None:
        children = _counted[key] = (
            HTTP_REQUESTS.labels(key[0], key[1], str(status)),
            HTTP_SECONDS.labels(key[0], key[1]),
        )
    children[0].inc()
    children[1].observe(seconds)


class _Outbox(Collector):
    """The outbox as the database holds it: the same for every process."""

    def __init__(self, stats: Mapping[str, int]) -> None:
        self.stats = stats

    def collect(self) -> Iterator[GaugeMetricFamily]:
        by_status = GaugeMetricFamily(
            "asyncpress_outbox_messages", "Outbox messages by status.", labels=["status"]
        )
        for status in ("pending", "sending", "sent", "dead"):
            by_status.add_metric([status], self.stats[status])
        yield by_status
        for name, key, text in (
            ("asyncpress_outbox_depth", "depth", "Messages waiting to be delivered."),
            ("asyncpress_outbox_retried_messages", "retried", "Messages that needed retries."),
            ("asyncpress_outbox_failed_attempts", "failed_attempts", "Failed delivery attempts."),
        ):
            yield GaugeMetricFamily(name, text, value=self.stats[key])


class Metrics:
    """Publishes this process's figures and answers scrapes."""

    def __init__(self, db: Database, outbox: Outbox, hub: Hub, cache: Cache) -> None:
        self.db = db
        self.outbox = outbox
        self.hub = hub
        self.cache = cache
        # What each counter held when last published: counters only go up,
        # by the difference.
        self._published: dict[tuple[int, str], float] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if FOLDER:
            await anyio.to_thread.run_sync(_forget_dead_workers, Path(FOLDER))
        self._task = asyncio.create_task(self._watch(), name="metrics")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _watch(self) -> None:
        """Sample the loop's lag; publish this worker's figures for the others' scrapes."""
        published = time.monotonic()
        while True:
            due = time.monotonic() + LAG_SAMPLE_S
            await asyncio.sleep(LAG_SAMPLE_S)
            now = time.monotonic()
            LOOP_LAG.observe(max(0.0, now - due))
            if FOLDER and now - published >= PUBLISH_S:
                self.publish()
                published = now

    def publish(self) -> None:
        pool = self.db.engine.pool
        direct = self.db.direct  # the one-statement work's own pool (fast.direct)
        in_use = int(getattr(pool, "checkedout", lambda: 0)())
        POOL.set(in_use + (0 if direct is None else direct.in_use))
        kinds = Tally(conn.kind for conn in self.hub.connections)
        for protocol in ("ws", "sse"):
            STREAMS.labels(protocol).set(kinds.get(protocol, 0))
        CURSOR.set(self.hub.cursor)
        REDIS_LINK.set(int(self.hub.redis_connected))
        FROZEN.set(gc.get_freeze_count())
        for generation in GENERATIONS:
            LONGEST_PAUSE.labels(str(generation)).set(PAUSES.longest[generation])
            self._add(COLLECTIONS, str(generation), PAUSES.collections[generation])
            self._add(PAUSED, str(generation), PAUSES.seconds[generation])
        self._add(EXPORTED, "", export.exported_rows)
        for result in ("sent", "failed", "retried", "dead"):
            self._add(DELIVERIES, result, self.outbox.counters[result])
        for what, count in self.hub.counters.items():
            self._add(EVENTS, what, count)
        for result, count in self.cache.counters.items():
            self._add(CACHE, result, count)
        policy = self.hub.collector.counters if self.hub.collector else {}
        for what in ("freezes", "thaws"):
            self._add(GC_POLICY, what, policy.get(what, 0))

    def _add(self, counter: Counter, label: str, total: float) -> None:
        key = (id(counter), label)
        delta = total - self._published.get(key, 0.0)
        # Every labelled series is shown from the start, at 0 until it counts.
        series = counter.labels(label) if label else counter
        if delta > 0:
            series.inc(delta)
            self._published[key] = total

    async def scrape(self) -> bytes:
        """The Prometheus text format: every worker's metrics and the outbox."""
        self.publish()
        async with self.db.session() as session:
            stats = await outbox_rows.stats(session)
        from_db = CollectorRegistry()
        from_db.register(_Outbox(stats))
        if FOLDER:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        else:
            registry = REGISTRY  # with the process's CPU and memory, read from /proc
        # Both read files (every worker's, or /proc): off the event loop.
        text = await anyio.to_thread.run_sync(generate_latest, registry)
        return text + generate_latest(from_db)


def _forget_dead_workers(folder: Path) -> None:
    """Drop the live-gauge files of workers that have exited (uvicorn restarts
    a worker that died; its live figures must not count any more)."""
    pids: set[int] = set()
    for file in folder.glob("gauge_live*_*.db"):
        digits = file.stem.rsplit("_", 1)[-1]
        if digits.isdigit():
            pids.add(int(digits))
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, str(folder))  # type: ignore[no-untyped-call]
        except PermissionError:
            continue
