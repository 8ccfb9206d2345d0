"""Cutting off an SSE client that stopped reading (pure ASGI).

A streaming response blocks in ``send`` while the client's socket is full,
so the stream cannot end itself. This middleware wraps the event stream's
ASGI call in a timeout that the hub can fire at once (the client's queue
overflowed) and bounds every single send. Either way the request raises
``SlowClient``, the server closes the connection, and the log filter below
keeps that expected outcome out of the error log.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from asyncpress.core.errors import StreamEnded

logger = logging.getLogger(__name__)

CUT_KEY = "asyncpress.cut_stream"


class SlowClient(StreamEnded):
    """An event stream ended because its client was not reading."""


class StreamGuardMiddleware:
    def __init__(self, app: ASGIApp, path: str, send_timeout_s: float) -> None:
        self.app = app
        self.path = path
        self.send_timeout_s = send_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()

        async def bounded_send(message: Message) -> None:
            try:
                async with asyncio.timeout(self.send_timeout_s) as limit:
                    await send(message)
            except TimeoutError as exc:
                if limit.expired():
                    raise SlowClient(f"a send took over {self.send_timeout_s:g} s") from exc
                raise

        try:
            async with asyncio.timeout(None) as cut:
                scope[CUT_KEY] = lambda: cut.reschedule(loop.time())
                await self.app(scope, receive, bounded_send)
        except BaseException as exc:
            # Our cut arrives as TimeoutError, or wrapped in the task groups of
            # the streaming response. The timeout has consumed the cancel.
            if cut.expired() and not isinstance(exc, asyncio.CancelledError):
                raise SlowClient("its queue of unsent events filled up") from exc
            raise


class QuietSlowClients(logging.Filter):
    """Drops the server's 'Exception in ASGI application' record for a SlowClient."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, SlowClient):
            logger.info("event stream client dropped: %s", exc)
            return False
        return True
