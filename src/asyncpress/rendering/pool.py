"""Markdown rendering in worker processes: CPU work that holds the GIL stays off the loop.

Threads do not help CPU-bound Python: a render holds the GIL, and every
other request waits for it (docs/benchmarks.md, "Rendering next to
everything else"). Here renders run in ``RENDER_PROCESSES`` worker
processes (each with its own GIL), and:

- one render runs per process; at most ``RENDER_QUEUE`` per process wait
  or run, and past that a render is refused with 503 and ``Retry-After``
  (a wait is bounded by the request's own deadline);
- each render has ``RENDER_TIMEOUT_S`` of run time; past it the client gets 422 and the
  pool is replaced, which ends the runaway render instead of letting it
  burn a core (renders in flight with it are answered 503);
- the pool starts on the first render (most processes never render), in
  a worker thread, since starting processes blocks.

``RENDER_PROCESSES=0`` renders in threads as before (no isolation).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import multiprocessing
from multiprocessing.pool import Pool

from anyio.to_thread import run_sync

from asyncpress.core.config import Settings
from asyncpress.core.errors import AppError, Invalid
from asyncpress.rendering.markdown import to_html

log = logging.getLogger(__name__)


class RenderBusy(AppError):
    status_code = 503

    def __init__(self, message: str) -> None:
        super().__init__("markdown", message)
        self.headers = {"Retry-After": "1"}


class _PoolReplaced(Exception):
    """The render's pool was replaced under it (another render ran too long)."""


class Renderer:
    def __init__(self, settings: Settings) -> None:
        self.processes = settings.render_processes
        self.timeout_s = settings.render_timeout_s
        self._slots = asyncio.Semaphore(settings.render_queue * max(1, self.processes))
        # One render per worker in flight, so a render's deadline counts its
        # own run time, not its wait behind others (that wait is the queue).
        self._running = asyncio.Semaphore(max(1, self.processes))
        self._thread_slots = asyncio.Semaphore(4)
        self._pool: Pool | None = None
        self._starting: asyncio.Lock | None = None
        self._generation = 0
        # Renders waiting on the current pool: failed at once if it is replaced.
        self._pending: set[asyncio.Future[str]] = set()

    async def html(self, markdown: str) -> str:
        """Safe HTML of ``markdown``: 422 past the deadline, 503 when the queue is full."""
        if self._slots.locked():
            raise RenderBusy("the renderer is busy; try again shortly")
        async with self._slots:
            if self.processes == 0:
                async with self._thread_slots:
                    return await run_sync(to_html, markdown)
            try:
                async with self._running:
                    return await self._in_process(markdown)
            except _PoolReplaced as exc:
                raise RenderBusy("the renderer restarted; try again") from exc

    async def _in_process(self, markdown: str) -> str:
        pool, generation = await self._current()
        loop = asyncio.get_running_loop()
        done: asyncio.Future[str] = loop.create_future()

        def settle(result: str) -> None:
            if not done.done():
                done.set_result(result)

        def fail(error: BaseException) -> None:
            if not done.done():
                done.set_exception(error)

        pool.apply_async(
            to_html,
            (markdown,),
            callback=lambda result: loop.call_soon_threadsafe(settle, result),
            error_callback=lambda error: loop.call_soon_threadsafe(fail, error),
        )
        del pool  # see _retire: only this object and a worker thread hold pools
        self._pending.add(done)
        try:
            async with asyncio.timeout(self.timeout_s):
                return await done
        except TimeoutError:
            await self._replace(generation)
            raise Invalid("markdown", f"takes longer than {self.timeout_s:g} s to render") from None
        finally:
            self._pending.discard(done)
            if not done.done():  # we were cancelled
                done.cancel()

    async def _current(self) -> tuple[Pool, int]:
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self._pool is None:
                self._pool = await run_sync(self._start)
            return self._pool, self._generation

    def _start(self) -> Pool:
        # spawn: the workers import only what rendering needs, not a copy of
        # this process with its loop, sockets and threads.
        pool = multiprocessing.get_context("spawn").Pool(processes=self.processes)
        # Workers start and import the renderer before any deadline runs.
        pool.map(to_html, [""] * self.processes)
        return pool

    async def _replace(self, generation: int) -> None:
        """Terminate the pool that ran a render too long (once per pool)."""
        if generation != self._generation or self._pool is None:
            return
        self._generation += 1
        for waiting in self._pending:
            if not waiting.done():
                waiting.set_exception(_PoolReplaced())
        log.warning(
            "a render passed its %.1f s deadline; restarting the render pool", self.timeout_s
        )
        await self._retire()

    async def close(self) -> None:
        if self._pool is not None:
            await self._retire()

    async def _retire(self) -> None:
        """Terminate the current pool in a worker thread, which also drops it.

        ``Pool.__del__`` and the finalizers of its locks write to pipes: the
        last reference must not go on the event loop's thread, so the pool is
        handed over in a list and collected there.
        """
        handed = [self._pool]
        self._pool = None
        await run_sync(_terminate, handed)


def _terminate(handed: list[Pool | None]) -> None:
    pool = handed.pop()
    if pool is not None:
        pool.terminate()
        pool.join()
        del pool
        # The pool's queues and locks sit in reference cycles; their
        # finalizers write to multiprocessing's resource tracker (a pipe).
        # Collected here, that happens in this thread, not on the loop.
        gc.collect()
