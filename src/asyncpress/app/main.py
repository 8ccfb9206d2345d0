"""The application factory and its lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from starlette.routing import BaseRoute

from asyncpress import __version__
from asyncpress.app.openapi import install_openapi
from asyncpress.app.services import running_services
from asyncpress.articles.router import router as articles_router
from asyncpress.comments.router import router as comments_router
from asyncpress.core.config import Settings, get_settings
from asyncpress.core.errors import install_error_handlers
from asyncpress.core.logs import configure_logging
from asyncpress.core.tracing import Tracing, provider_from_environment
from asyncpress.events.guard import StreamGuardMiddleware
from asyncpress.events.router import router as events_router
from asyncpress.notifications.router import router as notifications_router
from asyncpress.ops.cors import Cors
from asyncpress.ops.deadline import DeadlineMiddleware
from asyncpress.ops.gate import RequestGateMiddleware
from asyncpress.ops.request_id import RequestIdMiddleware
from asyncpress.ops.router import router as ops_router
from asyncpress.previews.router import router as previews_router
from asyncpress.profiles.router import router as profiles_router
from asyncpress.rendering.router import router as rendering_router
from asyncpress.stats.router import router as stats_router
from asyncpress.tags.router import router as tags_router
from asyncpress.users.router import router as users_router

log = logging.getLogger("asyncpress")


TAGS = [
    {
        "name": "User and Authentication",
        "description": "Register, log in, read and update your account.",
    },
    {"name": "Profile", "description": "Public profiles; follow and unfollow authors."},
    {"name": "Articles", "description": "Articles: list, feed, read, write, export and import."},
    {"name": "Favorites", "description": "Favorite and unfavorite articles."},
    {"name": "Comments", "description": "Comments on an article."},
    {"name": "Tags", "description": "Tags in use, most used first."},
    {"name": "Rendering", "description": "Markdown to safe HTML."},
    {"name": "Stats", "description": "Counts for a dashboard, a few seconds old at most."},
    {"name": "Link previews", "description": "Title, description and image of public pages."},
    {"name": "Events", "description": "Live events over Server-Sent Events (WebSocket: /api/ws)."},
    {"name": "Notifications", "description": "Which e-mail notifications you receive."},
    {"name": "Operations", "description": "Health checks and metrics for operators."},
]


def _install_middleware(app: FastAPI, settings: Settings, tracing: Tracing) -> None:
    """The pure-ASGI layers, innermost first."""
    app.add_middleware(
        DeadlineMiddleware,
        default_s=settings.request_timeout_s,
        by_prefix={
            "/api/articles/export": settings.export_timeout_s,
            "/api/events": None,  # streams end by their own lifetime cap
            "/api/events/ticket": settings.request_timeout_s,
        },
    )
    app.add_middleware(
        StreamGuardMiddleware, path="/api/events", send_timeout_s=settings.events_send_timeout_s
    )
    app.add_middleware(
        RequestGateMiddleware,
        default=settings.max_body_bytes,
        by_path={"/api/articles/import": settings.max_import_body_bytes},
    )
    cors = Cors(
        settings.cors_origins,
        methods=["GET", "POST", "PUT", "DELETE", "OPTIONS"],
        headers=["Authorization", "Content-Type", "X-Requested-With", "X-Request-ID"],
        expose=["X-Request-ID"],
        max_age_s=600,
    )
    # Outermost: every response, a CORS preflight's too, carries its id,
    # Server-Timing and what CORS says.
    app.add_middleware(RequestIdMiddleware, on_id=tracing.request_id_tagger(), cors=cors)


def create_app(settings: Settings | None = None, tracing: Tracing | None = None) -> FastAPI:
    """The app; ``tracing`` defaults to what the OTEL_* variables ask for (core.tracing)."""
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_lines)
    tracing = tracing or Tracing(provider_from_environment())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Read at each start: the settings of what the lifespan builds (the
        # database, the mail transport...) may be given anew to an app object
        # started again; the middleware keeps those it was created with.
        async with running_services(app.state.settings, tracing) as wiring:
            app.state.wiring = wiring
            yield

    app = FastAPI(
        title="asyncpress",
        # Trailing slashes are dropped before routing (ops.gate), never redirected.
        redirect_slashes=False,
        version=__version__,
        summary="RealWorld (Conduit) API and more, on async FastAPI.",
        openapi_tags=TAGS,
        lifespan=lifespan,
        # The request's root span, around every layer (core.tracing).
        telemetry=tracing.fastapi_telemetry(),
    )
    app.state.settings = settings
    install_error_handlers(app)
    install_openapi(app)
    _install_middleware(app, settings, tracing)
    _serve_flat(
        app,
        users_router,
        notifications_router,
        profiles_router,
        articles_router,
        comments_router,
        tags_router,
        rendering_router,
        stats_router,
        previews_router,
        events_router,
        ops_router,
    )
    return app


def _serve_flat(app: FastAPI, *routers: APIRouter) -> None:
    """Put each router's routes on the app's own router, in this order.

    FastAPI matches an included router's routes through a wrapper per
    inclusion, which it walks on every request (and walks again for a 404):
    matching took more of a one-row read's time than the read. The routers
    therefore declare their full paths (``/api/...``) and their routes are
    served as they are, one list matched in order, the order of the
    arguments.

    The route objects are the routers' own, shared by every app made in the
    process, so ``app.dependency_overrides`` does not reach them; nothing
    here uses it (services come from the lifespan's ``Wiring``).
    """
    for router in routers:
        app.router.routes.extend(router.routes)
    _hot_reads_first(app)


# The reads a RealWorld front end sends most, tried first and in this order:
# FastAPI tries the routes one after another (about a microsecond each), and
# GET /api/tags was the 27th. A literal path comes before the parameter that
# would take it (the feed and the export before an article's slug);
# tests/test_app.py checks that no route is hidden behind an earlier one.
HOT_READS = (
    "/api/articles",
    "/api/articles/feed",
    "/api/articles/export",
    "/api/articles/{slug}",
    "/api/articles/{slug}/comments",
    "/api/tags",
    "/api/profiles/{username}",
    "/api/user",
)


def _hot_reads_first(app: FastAPI) -> None:
    def rank(route: BaseRoute) -> int:
        path = getattr(route, "path", None)
        if path in HOT_READS and "GET" in (getattr(route, "methods", None) or ()):
            return HOT_READS.index(path)
        return len(HOT_READS)

    # sorted() is stable: the other routes keep the order they were added in.
    app.router.routes[:] = sorted(app.router.routes, key=rank)


def app_factory() -> FastAPI:
    """Entry point for ``uvicorn --factory asyncpress.app.main:app_factory``."""
    return create_app()
