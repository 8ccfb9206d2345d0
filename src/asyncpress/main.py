"""The application factory and its lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from sqlalchemy import text

from asyncpress import __version__
from asyncpress.articles.router import router as articles_router
from asyncpress.comments.router import router as comments_router
from asyncpress.config import Settings, get_settings
from asyncpress.db import create_engine, create_sessionmaker
from asyncpress.deps import SessionDep
from asyncpress.errors import install_error_handlers
from asyncpress.profiles.router import router as profiles_router
from asyncpress.resources import Resources
from asyncpress.security import Passwords, Tokens
from asyncpress.tags.router import router as tags_router
from asyncpress.users.router import router as users_router

log = logging.getLogger("asyncpress")


def _health_router() -> APIRouter:
    router = APIRouter(tags=["Operations"])

    @router.get("/health")
    async def health(session: SessionDep) -> dict[str, str]:
        await session.execute(text("SELECT 1"))
        return {"status": "ok"}

    return router


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    logging.basicConfig(level=settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Building an engine touches the file system (SQLite paths): not on the loop.
        engine = await anyio.to_thread.run_sync(create_engine, settings)
        passwords = Passwords(settings)
        await passwords.prepare()
        app.state.resources = Resources(
            settings=settings,
            engine=engine,
            sessionmaker=create_sessionmaker(engine),
            tokens=Tokens(settings.jwt_secret, settings.jwt_ttl_s),
            passwords=passwords,
        )
        log.info("asyncpress %s started on %s", __version__, engine.dialect.name)
        try:
            yield
        finally:
            await engine.dispose()

    app = FastAPI(
        title="asyncpress",
        version=__version__,
        summary="RealWorld (Conduit) API and more, on async FastAPI.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(settings.cors_origins),
        allow_methods=["GET", "POST", "PUT", "DELETE", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type", "X-Requested-With"],
        max_age=600,
    )
    api = APIRouter(prefix="/api")
    for router in (
        users_router,
        profiles_router,
        articles_router,
        comments_router,
        tags_router,
        _health_router(),
    ):
        api.include_router(router)
    app.include_router(api)
    return app


def app_factory() -> FastAPI:
    """Entry point for ``uvicorn --factory asyncpress.main:app_factory``."""
    return create_app()
