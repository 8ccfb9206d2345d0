"""Telling event streams about SIGTERM before the server starts closing sockets.

uvicorn closes WebSockets with 1012 when it shuts down. Clients of
asyncpress get 1001 (going away) instead, and SSE streams end cleanly: our
handler runs first, asks the hub to end every stream, then hands the signal
on to the server's own handler.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from types import FrameType
from typing import Any

SIGNALS = (signal.SIGTERM, signal.SIGINT)


def chain_shutdown(callback: Callable[[], None]) -> Callable[[], None]:
    """Run ``callback`` on the loop when a shutdown signal arrives; returns an undo.

    Only signals that already have a Python handler (a server's graceful
    shutdown) are chained; where nobody handles them, nothing changes.
    """
    loop = asyncio.get_running_loop()
    installed: dict[int, tuple[Any, Any]] = {}
    for sig in SIGNALS:
        previous = signal.getsignal(sig)
        if not callable(previous):
            continue

        def handler(signum: int, frame: FrameType | None, previous: Any = previous) -> None:
            loop.call_soon_threadsafe(callback)
            previous(signum, frame)

        try:
            signal.signal(sig, handler)
        except ValueError:  # not the main thread: leave signals alone
            continue
        installed[sig] = (handler, previous)

    def undo() -> None:
        for sig, (handler, previous) in installed.items():
            if signal.getsignal(sig) is handler:
                signal.signal(sig, previous)

    return undo
