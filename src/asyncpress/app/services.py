"""Every service of a running app, built once with its collaborators, and disposed."""

from __future__ import annotations

import functools
import logging
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
import httpx

from asyncpress import __version__
from asyncpress.app.after_commit import AfterCommit
from asyncpress.articles.service import Articles
from asyncpress.comments.service import Comments
from asyncpress.core.cache import Cache, backend_for
from asyncpress.core.config import Settings
from asyncpress.core.db.engine import create_engine, create_sessionmaker, direct_pool
from asyncpress.core.ratelimit import RateLimits
from asyncpress.core.security import Passwords, Tokens
from asyncpress.core.tracing import Tracing
from asyncpress.core.uow import Database
from asyncpress.core.web import Wiring
from asyncpress.events.guard import QuietSlowClients
from asyncpress.events.hub import Hub
from asyncpress.events.signals import chain_shutdown
from asyncpress.events.tickets import StreamAccess
from asyncpress.fast.gc_pauses import PAUSES
from asyncpress.fast.wire import limit_request_heads
from asyncpress.notifications.delivery import Outbox
from asyncpress.notifications.service import NotificationPreferences
from asyncpress.notifications.transport import transport_for
from asyncpress.ops.metrics import Metrics
from asyncpress.previews.fetch import Fetcher
from asyncpress.previews.service import Previews
from asyncpress.profiles.repository import Follows
from asyncpress.profiles.service import Profiles
from asyncpress.rendering.pool import Renderer
from asyncpress.stats.service import Dashboard
from asyncpress.tags.service import Tags
from asyncpress.users.auth import Authenticator
from asyncpress.users.service import Accounts

log = logging.getLogger("asyncpress")


@functools.cache
def _tls_context() -> ssl.SSLContext:
    # Loading the CA bundle reads files and costs tens of milliseconds of CPU:
    # once per process (an SSLContext is shared safely), in a worker thread.
    return httpx.create_ssl_context()


def _fetcher(settings: Settings, tls: ssl.SSLContext) -> tuple[httpx.AsyncClient, Fetcher]:
    """One client for every outbound request (pooled, bounded), and the preview fetcher on it."""
    http = httpx.AsyncClient(
        verify=tls,
        timeout=httpx.Timeout(settings.preview_timeout_s),
        limits=httpx.Limits(max_connections=settings.preview_max_connections),
        follow_redirects=False,
        headers={"User-Agent": f"asyncpress/{__version__} (link preview)"},
    )
    fetcher = Fetcher(
        http,
        deadline_s=settings.preview_deadline_s,
        allowed_hosts=frozenset(settings.preview_allowed_hosts),
    )
    return http, fetcher


@asynccontextmanager
async def running_services(settings: Settings, tracing: Tracing) -> AsyncIterator[Wiring]:
    """Build the services, start their background work, yield them; stop and dispose."""
    # Building an engine touches the file system (SQLite paths): not on the loop.
    engine = await anyio.to_thread.run_sync(create_engine, settings)
    tracing.engine(engine)
    if settings.redis_url is not None:
        tracing.start_redis()
    passwords = Passwords(settings)
    await passwords.prepare()
    sessionmaker = create_sessionmaker(engine)
    hub = Hub(settings, sessionmaker, Follows())
    await hub.start()
    outbox = Outbox(settings, sessionmaker, transport_for(settings))
    cache = Cache(backend_for(settings))
    limits = RateLimits(settings)
    renderer = Renderer(settings)
    http, fetcher = _fetcher(settings, await anyio.to_thread.run_sync(_tls_context))
    tracing.http_client(http)
    previews = Previews(sessionmaker, fetcher, settings.preview_max_age_s)
    after_commit = AfterCommit(cache, hub, outbox, previews)
    db = Database(engine, sessionmaker, after_commit, direct_pool(settings, engine))
    tokens = Tokens(settings.jwt_secret, settings.jwt_ttl_s)
    metrics = Metrics(db, outbox, hub, cache)
    wiring = Wiring(
        metrics,
        settings,
        db,
        hub,
        outbox,
        previews,
        limits,
        renderer,
        Authenticator(tokens, db),
        Accounts(db, passwords, tokens),
        Profiles(db),
        Articles(db, cache, settings),
        Comments(db),
        Tags(db, cache, settings.tags_cache_s),
        Dashboard(db, cache, settings.stats_cache_s),
        NotificationPreferences(db),
        StreamAccess(db, settings.events_ticket_ttl_s),
    )
    undo_signals = chain_shutdown(hub.end_streams)
    quiet = QuietSlowClients()
    logging.getLogger("uvicorn.error").addFilter(quiet)
    if settings.outbox_in_process:
        outbox.start()
    await metrics.start()
    limit_request_heads(settings.max_request_head_bytes, settings.request_head_timeout_s)
    PAUSES.install()
    if hub.collector is not None:
        hub.collector.freeze_startup()  # once, before anything is served
    log.info("asyncpress %s started on %s", __version__, engine.dialect.name)
    try:
        yield wiring
    finally:
        undo_signals()
        await metrics.stop()
        logging.getLogger("uvicorn.error").removeFilter(quiet)
        await hub.stop()
        await after_commit.close()
        # An abandoned batch is claimed again after its lease: nothing is lost.
        await outbox.stop(grace_s=3.0)
        await http.aclose()
        await cache.close()
        await limits.close()
        await renderer.close()
        await db.close()
        passwords.close()
        # Sends what the exporter still holds: a blocking call.
        await anyio.to_thread.run_sync(tracing.stop)
