"""Every HTTP request has a deadline (pure ASGI).

Past it the request's work is cancelled (its database session closes and
the connection goes back to the pool) and the client gets a 504 in the
error envelope. Routes that stream for long (exports, event streams) get
their own allowance by path prefix; ``None`` means no deadline.

The 504 does not wait for the cancelled work to unwind for longer than
``CLEANUP_GRACE_S``: against a frozen database, rolling back the cancelled
transaction waits on the database too, and the client would get its answer
only when the database did. Work still unwinding then finishes in the
background (held here, so it is not collected), and whatever it tries to
send is dropped.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from asyncpress.core.errors import error_response

log = logging.getLogger(__name__)

CLEANUP_GRACE_S = 0.25


class DeadlineMiddleware:
    def __init__(
        self, app: ASGIApp, default_s: float, by_prefix: dict[str, float | None] | None = None
    ) -> None:
        self.app = app
        self.default_s = default_s
        # Longest prefix first, so "/api/articles/export" beats "/api/articles".
        self.by_prefix = sorted((by_prefix or {}).items(), key=lambda kv: -len(kv[0]))
        self._unwinding: set[asyncio.Future[None]] = set()

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
        started = answered = False

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if answered:
                return  # we answered 504 for it; the late work has no say
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        work = asyncio.ensure_future(self.app(scope, receive, guarded_send))
        try:
            await settled(work, seconds)
        except asyncio.CancelledError:
            work.cancel()
            self._hold(work)  # unwinds after we are gone: keep it referenced
            raise
        if work.done():
            work.result()  # re-raises what the app raised
            return
        work.cancel()
        # A moment to unwind (its session closes). Waiting raises none of the
        # work's errors; they are logged below or by the done callback.
        await settled(work, CLEANUP_GRACE_S)
        if not work.done():
            self._hold(work)
        elif not work.cancelled() and work.exception() is not None:
            log.warning(
                "%s %s failed after its deadline",
                scope["method"],
                scope["path"],
                exc_info=work.exception(),
            )
        log.warning("%s %s passed its %.1f s deadline", scope["method"], scope["path"], seconds)
        if started:
            # A response is under way: all we can do is cut it off.
            raise TimeoutError(f"{scope['path']} passed its {seconds:g} s deadline")
        answered = True
        response = error_response(504, {"request": [f"took longer than {seconds:g} s"]})
        await response(scope, receive, send)

    def _hold(self, work: asyncio.Future[None]) -> None:
        if not work.done():
            self._unwinding.add(work)
            work.add_done_callback(self._unwound)

    def _unwound(self, task: asyncio.Future[None]) -> None:
        self._unwinding.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning(
                "a request's work failed while unwinding after its deadline",
                exc_info=task.exception(),
            )


async def settled(work: asyncio.Future[None], seconds: float) -> None:
    """Return when ``work`` is done or ``seconds`` have passed, whichever is first.

    What ``asyncio.wait({work}, timeout=seconds)`` does for one task, without
    its checks and sets: this runs on every request (docs/benchmarks.md,
    sixth round). Cancelling the caller leaves ``work`` running.
    """
    loop = asyncio.get_running_loop()
    woken: asyncio.Future[None] = loop.create_future()

    def wake(_: object) -> None:
        if not woken.done():
            woken.set_result(None)

    timer = loop.call_later(seconds, wake, None)
    work.add_done_callback(wake)
    try:
        await woken
    finally:
        timer.cancel()
        work.remove_done_callback(wake)
