"""Every HTTP request has a deadline (pure ASGI).

Past it the request's work is cancelled (its database session closes and
the connection goes back to the pool) and the client gets a 504 in the
error envelope. Routes that stream for long (exports, event streams) get
their own allowance by path prefix; ``None`` means no deadline.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from asyncpress.errors import error_response

log = logging.getLogger(__name__)


class DeadlineMiddleware:
    def __init__(
        self, app: ASGIApp, default_s: float, by_prefix: dict[str, float | None] | None = None
    ) -> None:
        self.app = app
        self.default_s = default_s
        # Longest prefix first, so "/api/articles/export" beats "/api/articles".
        self.by_prefix = sorted((by_prefix or {}).items(), key=lambda kv: -len(kv[0]))

    def deadline_for(self, path: str) -> float | None:
        for prefix, seconds in self.by_prefix:
            if path.startswith(prefix):
                return seconds
        return self.default_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        seconds = self.deadline_for(scope["path"])
        if seconds is None:
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            async with asyncio.timeout(seconds) as deadline:
                await self.app(scope, receive, tracking_send)
        except TimeoutError:
            if not deadline.expired():
                raise  # some other timeout inside the app: not ours to answer
            log.warning("%s %s passed its %.1f s deadline", scope["method"], scope["path"], seconds)
            if started:
                raise  # a response is under way; all we can do is cut it off
            response = error_response(504, {"request": [f"took longer than {seconds:g} s"]})
            await response(scope, receive, send)
