"""Telling event streams about SIGTERM before the server starts closing sockets.

uvicorn closes WebSockets with 1012 when it shuts down. Clients of
asyncpress get 1001 (going away) instead, and SSE streams end cleanly: our
handler runs first, has the hub end every stream and waits (boundedly) until
they have, then hands the signal on to the server's own handler. Handing it
on at once would race: on a busy CPU the server's next tick can come before
the streams' tasks have sent their goodbyes.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Coroutine
from types import FrameType
from typing import Any

SIGNALS = (signal.SIGTERM, signal.SIGINT)


def chain_shutdown(callback: Callable[[], Coroutine[Any, Any, None]]) -> Callable[[], None]:
    """Await ``callback`` on the loop when a shutdown signal arrives, then hand
    the signal on; returns an undo.

    Only signals that already have a Python handler (a server's graceful
    shutdown) are chained; where nobody handles them, nothing changes. A
    second signal while the first is being handled goes straight on (an
    impatient operator's second Ctrl-C still forces the exit).
    """
    loop = asyncio.get_running_loop()
    installed: dict[int, tuple[Any, Any]] = {}
    # Set by the first signal's handler itself (signal handlers run in the
    # main thread, one at a time), so a second signal that comes before the
    # loop has started the first one's task still goes straight on.
    underway: list[asyncio.Task[None]] = []
    signalled = False

    def run_then_hand_on(signum: int, frame: FrameType | None, previous: Any) -> None:
        task = loop.create_task(callback(), name="events-shutdown")
        underway.append(task)  # referenced until the process ends
        task.add_done_callback(lambda _done: previous(signum, frame))

    for sig in SIGNALS:
        previous = signal.getsignal(sig)
        if not callable(previous):
            continue

        def handler(signum: int, frame: FrameType | None, previous: Any = previous) -> None:
            nonlocal signalled
            if signalled:
                previous(signum, frame)
                return
            signalled = True
            loop.call_soon_threadsafe(run_then_hand_on, signum, frame, previous)

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
