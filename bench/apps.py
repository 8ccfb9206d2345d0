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

``blocking``
    asyncpress itself plus ``POST /bench/login-on-loop``: the login check
    with argon2 run on the event loop, to show what one blocking call does
    to every other request. It exists only here.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import FastAPI

from asyncpress.app.main import create_app
from asyncpress.articles.schemas import ArticlesResponse
from asyncpress.core.config import get_settings
from asyncpress.core.security import Passwords
from asyncpress.core.web import provided
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
    app = FastAPI(title="bench ceiling")

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
