"""Apps that only the benchmark suite serves; none of this is part of asyncpress.

``ceiling``
    The framework ceiling and the seeds' examples, served by the same
    uvicorn setup as asyncpress (``asyncpress serve`` options, one worker):

    - ``GET /small``: a small dict;
    - ``GET /articles``: 20 article-shaped objects through asyncpress's own
      list response model (``ArticlesResponse``);
    - ``GET /io/async``: ``await asyncio.sleep(0.1)``;
      ``GET /io/sync``: ``def`` + ``time.sleep(0.1)`` (runs in the threadpool);
    - ``GET /fanout/sequential`` and ``/fanout/taskgroup``: three independent
      100 ms waits, one after another or at once.

    The per-request floors of a signed-in read and of a write, in the same
    app: plain FastAPI routes on raw asyncpg, or raw asyncmy on MySQL/MariaDB
    (a pool of 10, like asyncpress's), with asyncpress's own token check and response model and
    nothing else:

    - ``GET /api/profiles/{username}``: one ``fetchrow`` (the profile and
      whether the viewer follows it) through ``ProfileResponse``;
    - ``POST /api/articles/{slug}/favorite``: one transaction writing the
      rows a favorite cannot do without (the favorite and its live event).

    They need ``DATABASE_URL`` (the seeded database) and ``JWT_SECRET``.

``blocking``
    asyncpress itself plus ``POST /bench/login-on-loop``: the login check
    with argon2 run on the event loop, to show what one blocking call does
    to every other request. It exists only here.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Protocol

import asyncmy
import asyncpg
from fastapi import FastAPI, Header, HTTPException
from servers.mariadb import asyncmy_args

from asyncpress.app.main import create_app
from asyncpress.articles.schemas import ArticlesResponse
from asyncpress.core.config import get_settings
from asyncpress.core.security import Passwords, TokenError, Tokens
from asyncpress.core.web import provided
from asyncpress.profiles.schemas import ProfileResponse
from asyncpress.users.router import user_response
from asyncpress.users.schemas import LoginRequest, UserResponse
from asyncpress.users.service import Accounts

WAIT_S = 0.1


def _article(n: int) -> dict[str, Any]:
    moment = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=n)
    return {
        "slug": f"how-to-train-your-dragon-{n}",
        "title": f"How to train your dragon {n}",
        "description": "Ever wonder how? A short guide in several parts.",
        "tag_list": ["dragons", "training", "fantasy"][: 1 + n % 3],
        "created_at": moment,
        "updated_at": moment,
        "favorited": n % 2 == 0,
        "favorites_count": n * 3,
        "author": {
            "username": f"author{n}",
            "bio": "Writes about dragons and the people who train them.",
            "image": None,
            "following": n % 3 == 0,
        },
    }


PAGE = [_article(n) for n in range(20)]


def ceiling() -> FastAPI:
    stores: list[Store] = []

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # The floors' pool, on the seeded database the suite names.
        url = get_settings().database_url
        store: Store = await (MyStore.open(url) if url.startswith("mysql") else PgStore.open(url))
        stores.append(store)
        try:
            yield
        finally:
            await store.close()

    app = FastAPI(title="bench ceiling", lifespan=lifespan)
    _floors(app, stores)

    @app.get("/small")
    async def small() -> dict[str, Any]:
        return {"status": "ok", "name": "asyncpress", "version": 1}

    @app.get("/articles", response_model=ArticlesResponse)
    async def articles() -> dict[str, Any]:
        # Plain dicts, validated and serialised through the response model on
        # every request, as the real list endpoint's data would be.
        return {"articles": PAGE, "articles_count": 20_000}

    @app.get("/io/async")
    async def io_async() -> dict[str, bool]:
        await asyncio.sleep(WAIT_S)
        return {"ok": True}

    @app.get("/io/sync")
    def io_sync() -> dict[str, bool]:
        time.sleep(WAIT_S)
        return {"ok": True}

    @app.get("/fanout/sequential")
    async def fanout_sequential() -> dict[str, int]:
        for _ in range(3):
            await asyncio.sleep(WAIT_S)
        return {"waits": 3}

    @app.get("/fanout/taskgroup")
    async def fanout_taskgroup() -> dict[str, int]:
        async with asyncio.TaskGroup() as group:
            for _ in range(3):
                group.create_task(asyncio.sleep(WAIT_S))
        return {"waits": 3}

    return app


PROFILE = """
SELECT u.username, u.bio, u.image,
       EXISTS (SELECT 1 FROM follows f WHERE f.follower_id = $2 AND f.followee_id = u.id)
         AS following
FROM users u WHERE u.username = $1
"""
FAVORITE = """
INSERT INTO favorites (user_id, article_id, created_at)
SELECT $1, a.id, now() FROM articles a WHERE a.slug = $2
ON CONFLICT DO NOTHING
"""
EVENT = """
INSERT INTO events (type, created_at, channels, data) VALUES ('favorite', now(), $1, $2)
"""


class Store(Protocol):
    async def profile(self, username: str, viewer: int) -> dict[str, Any] | None: ...
    async def favorite(self, user_id: int, slug: str) -> None: ...
    async def close(self) -> None: ...


class PgStore:
    """The floors on raw asyncpg."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @classmethod
    async def open(cls, url: str) -> PgStore:
        dsn = url.replace("postgresql+asyncpg", "postgresql").replace("ssl=", "sslmode=")
        return cls(await asyncpg.create_pool(dsn, min_size=10))

    async def profile(self, username: str, viewer: int) -> dict[str, Any] | None:
        row = await self.pool.fetchrow(PROFILE, username, viewer)
        return None if row is None else dict(row)

    async def favorite(self, user_id: int, slug: str) -> None:
        async with self.pool.acquire() as connection, connection.transaction():
            await connection.execute(FAVORITE, user_id, slug)
            data = json.dumps({"slug": slug, "user": user_id, "favorited": True})
            await connection.execute(EVENT, f"article:{slug} user:{user_id}", data)

    async def close(self) -> None:
        await self.pool.close()


# The same statements in MySQL's dialect (asyncmy's %s parameters).
MY_PROFILE = """
SELECT u.username, u.bio, u.image,
       EXISTS (SELECT 1 FROM follows f WHERE f.follower_id = %s AND f.followee_id = u.id)
         AS following
FROM users u WHERE u.username = %s
"""
MY_FAVORITE = """
INSERT IGNORE INTO favorites (user_id, article_id, created_at)
SELECT %s, a.id, UTC_TIMESTAMP(6) FROM articles a WHERE a.slug = %s
"""
MY_EVENT = """
INSERT INTO events (type, created_at, channels, data)
VALUES ('favorite', UTC_TIMESTAMP(6), %s, %s)
"""


class MyStore:
    """The floors on raw asyncmy (MySQL/MariaDB), a pool of 10 like asyncpress's."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool

    @classmethod
    async def open(cls, url: str) -> MyStore:
        pool = await asyncmy.create_pool(
            **asyncmy_args(url), minsize=10, maxsize=10, autocommit=True
        )
        return cls(pool)

    async def profile(self, username: str, viewer: int) -> dict[str, Any] | None:
        async with self.pool.acquire() as connection, connection.cursor() as cursor:
            await cursor.execute(MY_PROFILE, (viewer, username))
            row = await cursor.fetchone()
        if row is None:
            return None
        return {"username": row[0], "bio": row[1], "image": row[2], "following": bool(row[3])}

    async def favorite(self, user_id: int, slug: str) -> None:
        async with self.pool.acquire() as connection:
            await connection.begin()
            try:
                async with connection.cursor() as cursor:
                    await cursor.execute(MY_FAVORITE, (user_id, slug))
                    data = json.dumps({"slug": slug, "user": user_id, "favorited": True})
                    await cursor.execute(MY_EVENT, (f"article:{slug} user:{user_id}", data))
                await connection.commit()
            except BaseException:
                await connection.rollback()
                raise

    async def close(self) -> None:
        self.pool.close()
        await self.pool.wait_closed()


def _floors(app: FastAPI, stores: list[Store]) -> None:
    settings = get_settings()
    tokens = Tokens(settings.jwt_secret, settings.jwt_ttl_s)

    def viewer(authorization: str | None) -> int:
        scheme, _, token = (authorization or "").partition(" ")
        try:
            if scheme != "Token":
                raise TokenError("no token")
            return tokens.user_id(token)
        except TokenError:
            raise HTTPException(401) from None

    @app.get("/api/profiles/{username}", response_model=ProfileResponse)
    async def profile(username: str, authorization: Annotated[str | None, Header()] = None) -> Any:
        row = await stores[0].profile(username, viewer(authorization))
        if row is None:
            raise HTTPException(404)
        return {"profile": row}

    @app.post("/api/articles/{slug}/favorite")
    async def favorite(slug: str, authorization: Annotated[str | None, Header()] = None) -> Any:
        await stores[0].favorite(viewer(authorization), slug)
        return {"favorited": True}


class PasswordsOnTheLoop(Passwords):
    """asyncpress's password checks, but run on the event loop: what not to do."""

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        if stored_hash is None:
            return False
        return self._check(stored_hash, password)  # blocks the loop, on purpose


def blocking() -> FastAPI:
    settings = get_settings()
    app = create_app(settings)
    on_the_loop = PasswordsOnTheLoop(settings)

    @app.post("/bench/login-on-loop", response_model=UserResponse)
    async def login_on_loop(
        body: LoginRequest, accounts: Annotated[Accounts, provided(Accounts)]
    ) -> UserResponse:
        """``POST /api/users/login`` with the one difference: argon2 on the loop."""
        blocking_accounts = Accounts(accounts.db, on_the_loop, accounts.tokens)
        user = await blocking_accounts.login(body.user)
        return user_response(user, accounts.token_for(user))

    return app
