"""A connection pool that hands connections out first come, first served.

SQLAlchemy's asyncio pool keeps idle connections in an ``asyncio.Queue``.
A request that asks while one is idle takes it at once, even when others
have been waiting: a waiter woken for a returned connection finds it gone
and queues again at the back. Under load (more requests in flight than
connections) a few requests then wait for seconds while the rest pass, a
tail a hundred times the median (docs/benchmarks.md). Here a returned
connection goes straight to the
longest waiter, and nobody takes an idle connection while others wait.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import Any

from sqlalchemy.pool import AsyncAdaptedQueuePool
from sqlalchemy.util.concurrency import await_
from sqlalchemy.util.queue import AsyncAdaptedQueue, Empty


class FairQueue(AsyncAdaptedQueue[Any]):
    def __init__(self, maxsize: int = 0, use_lifo: bool = False) -> None:
        super().__init__(maxsize, use_lifo)
        self._waiters: deque[asyncio.Future[Any]] = deque()

    def put_nowait(self, item: Any) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(item)
                return
        super().put_nowait(item)

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        # The pool returns connections without blocking; so do we.
        self.put_nowait(item)

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        if not self._waiters:
            try:
                return self._queue.get_nowait()
            except asyncio.QueueEmpty:
                pass
        if not block:
            raise Empty
        return await_(self._wait(timeout))

    async def _wait(self, patience_s: float | None) -> Any:
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(patience_s):
                return await waiter
        except TimeoutError as exc:
            self._give_up(waiter)
            raise Empty from exc
        except BaseException:
            self._give_up(waiter)
            raise

    def _give_up(self, waiter: asyncio.Future[Any]) -> None:
        """Leave the line; a connection handed over meanwhile goes to the next in it."""
        if waiter.done() and not waiter.cancelled():
            self.put_nowait(waiter.result())
            return
        waiter.cancel()
        with contextlib.suppress(ValueError):
            self._waiters.remove(waiter)


class FairAsyncPool(AsyncAdaptedQueuePool):
    """SQLAlchemy's asyncio pool with a :class:`FairQueue`."""

    _queue_class = FairQueue
