"""Delivering the outbox: claim due messages, send them, record what happened.

The same code runs in three places: a kick right after a response (prompt
delivery), a periodic sweep owned by the API's lifespan, and ``asyncpress
worker`` processes. Claims carry a lease, so a message whose sender died is
claimed again once the lease runs out: at-least-once delivery, and the
Message-ID (derived from the idempotency key) marks a rare duplicate.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
from collections import Counter
from datetime import timedelta
from email.utils import parseaddr

from anyio.to_thread import run_sync
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from asyncpress.core.config import Settings
from asyncpress.core.db.base import utcnow
from asyncpress.core.db.engine import begin_write
from asyncpress.notifications import repository
from asyncpress.notifications.mail import Renderer
from asyncpress.notifications.repository import Claimed
from asyncpress.notifications.transport import Outgoing, Transport

log = logging.getLogger(__name__)


def backoff_s(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Exponential backoff with full jitter: up to ``base * 2**(attempt-1)``, capped."""
    return float(rng.uniform(0.5, 1.0) * min(cap, base * 2 ** (attempt - 1)))


class Outbox:
    def __init__(
        self,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        transport: Transport,
        name: str | None = None,
    ) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        self.transport = transport
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.renderer = Renderer(settings.mail_from, settings.public_url)
        self.envelope_from = parseaddr(settings.mail_from)[1]
        self.counters: Counter[str] = Counter()
        self._rng = random.Random()  # noqa: S311 - jitter, not secrets
        self._wake = asyncio.Event()
        self._stopping = False
        self._kick_pending = False
        self._loop_task: asyncio.Task[None] | None = None
        self._kick_task: asyncio.Task[None] | None = None

    # -- one pass ---------------------------------------------------------
    async def drain_once(self) -> int:
        """Claim one batch of due messages and deliver it. Returns how many were claimed."""
        now = utcnow()
        async with self.sessionmaker() as session:
            await begin_write(session)
            claimed = await repository.claim(
                session,
                self.name,
                now,
                timedelta(seconds=self.settings.outbox_lease_s),
                self.settings.outbox_batch,
            )
            await session.commit()
        if not claimed:
            return 0
        # No database connection is held while the mail goes out.
        results = await self._deliver(claimed)
        await self._record(claimed, results)
        return len(claimed)

    def _render_all(
        self, claimed: list[Claimed]
    ) -> tuple[list[tuple[int, Outgoing]], dict[int, str | None]]:
        """Render a whole batch to wire bytes (in a worker thread: one hop for all).

        Flattening a MIME message is CPU work too, so it happens here, not on
        the event loop inside the SMTP client.
        """
        batch = []
        results: dict[int, str | None] = {}
        for message in claimed:
            try:
                data = self.renderer.render(message)
                batch.append((message.id, Outgoing(self.envelope_from, message.to_email, data)))
            except Exception as exc:  # noqa: BLE001 - a broken message must not stop the batch
                results[message.id] = f"render: {type(exc).__name__}: {exc}"
        return batch, results

    async def _deliver(self, claimed: list[Claimed]) -> dict[int, str | None]:
        batch, results = await run_sync(self._render_all, claimed)
        if batch:
            # The whole batch gets one deadline on top of the per-command SMTP timeouts.
            deadline = self.settings.smtp_timeout_s * (2 + len(batch))
            try:
                async with asyncio.timeout(deadline):
                    results.update(await self.transport.send(batch))
            except TimeoutError:
                for outbox_id, _ in batch:
                    results.setdefault(outbox_id, "delivery deadline passed")
        return results

    async def _record(self, claimed: list[Claimed], results: dict[int, str | None]) -> None:
        now = utcnow()
        sent = [m.id for m in claimed if results.get(m.id, "no result") is None]
        async with self.sessionmaker() as session:
            await begin_write(session)
            await repository.mark_sent(session, sent, self.name, now)
            for message in claimed:
                error = results.get(message.id, "no result")
                if error is None:
                    continue
                if message.attempts >= self.settings.notify_max_attempts:
                    retry_at = None
                    self.counters["dead"] += 1
                    log.error(
                        "outbox %s dead after %s attempts: %s", message.id, message.attempts, error
                    )
                else:
                    delay = backoff_s(
                        message.attempts,
                        self.settings.notify_backoff_base_s,
                        self.settings.notify_backoff_max_s,
                        self._rng,
                    )
                    retry_at = now + timedelta(seconds=delay)
                    self.counters["retried"] += 1
                    log.warning(
                        "outbox %s attempt %s failed: %s", message.id, message.attempts, error
                    )
                self.counters["failed"] += 1
                await repository.mark_failed(session, message.id, self.name, error, retry_at)
            await session.commit()
        self.counters["sent"] += len(sent)

    async def drain(self) -> int:
        """Deliver until nothing is due. Returns how many messages were claimed."""
        total = 0
        while not self._stopping and (claimed := await self.drain_once()):
            total += claimed
        return total

    # -- background -------------------------------------------------------
    def kick(self) -> None:
        """Deliver soon, from a task this object owns (coalesced: one pass at a time).

        Called on the event loop after a unit of work that queued messages
        commits (asyncpress.app.after_commit). Does nothing when
        ``OUTBOX_IN_PROCESS`` is off: separate workers deliver.
        """
        if not self.settings.outbox_in_process or self._kick_pending:
            return
        # Kicks that arrive within OUTBOX_KICK_DELAY_S share one pass, so a
        # stream of comments makes batches, not one SMTP session per comment.
        self._kick_pending = True
        asyncio.get_running_loop().call_later(self.settings.outbox_kick_delay_s, self._kicked)

    def _kicked(self) -> None:
        self._kick_pending = False
        if self._stopping:
            return
        self._wake.set()
        if self._loop_task is None and (self._kick_task is None or self._kick_task.done()):
            self._kick_task = asyncio.create_task(self._safe_drain(), name="outbox-kick")

    async def _safe_drain(self) -> None:
        try:
            await self.drain()
        except asyncio.CancelledError:
            raise
        except Exception:
            self.counters["loop_errors"] += 1
            log.exception("outbox delivery pass failed; the sweep will try again")

    async def run(self) -> None:
        """Sweep forever: drain, then sleep until kicked or ``OUTBOX_SWEEP_S`` passes."""
        while not self._stopping:
            self._wake.clear()
            await self._safe_drain()
            try:
                async with asyncio.timeout(self.settings.outbox_sweep_s):
                    await self._wake.wait()
            except TimeoutError:
                pass

    def start(self) -> None:
        self._loop_task = asyncio.create_task(self.run(), name="outbox-sweep")

    async def stop(self, grace_s: float = 10.0) -> None:
        """Let the pass in flight finish (up to ``grace_s``), then stop.

        Cancelling in the middle of a database call could strand a driver
        thread; a claimed batch left unfinished is simply claimed again
        after its lease.
        """
        self._stopping = True
        self._wake.set()
        tasks = [t for t in (self._loop_task, self._kick_task) if t is not None and not t.done()]
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=grace_s)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        self._loop_task = self._kick_task = None
