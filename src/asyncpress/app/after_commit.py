"""The one place where what a committed write declared is carried out.

A unit of work (``asyncpress.core.uow``) collects its follow-ups while the
write runs; when it commits, :meth:`AfterCommit.run` gets them, in the
request that wrote, before the response is sent:

- cache keys are deleted (awaited: the writer's next read must not see the
  old value, and Redis is bounded by short timeouts);
- every process's event hub is woken (this one directly, the others through
  Redis when there is one; all of them poll the journal in any case);
- the outbox is kicked, so queued mail leaves without waiting for a sweep;
- link previews are fetched in background tasks this object owns (a slow
  page must not delay the response); they are cancelled at shutdown.
"""

from __future__ import annotations

import asyncio
import logging

from asyncpress.core.cache import Cache
from asyncpress.core.uow import FollowUps
from asyncpress.events.hub import Hub
from asyncpress.notifications.delivery import Outbox
from asyncpress.previews.service import Previews

log = logging.getLogger(__name__)

# Previews warmed at once at most; more are dropped (a reader fetches them).
MAX_WARMING = 32


class AfterCommit:
    def __init__(self, cache: Cache, hub: Hub, outbox: Outbox, previews: Previews) -> None:
        self.cache = cache
        self.hub = hub
        self.outbox = outbox
        self.previews = previews
        self._warming: set[asyncio.Task[None]] = set()

    async def run(self, follow_ups: FollowUps) -> None:
        if follow_ups.wake_streams:
            self.hub.committed()
        if follow_ups.kick_outbox:
            self.outbox.kick()
        for text in follow_ups.preview:
            self._warm(text)
        if follow_ups.retire:
            await self.cache.invalidate(*sorted(follow_ups.retire))

    def _warm(self, text: str) -> None:
        if len(self._warming) >= MAX_WARMING:
            return
        task = asyncio.get_running_loop().create_task(self._warm_quietly(text), name="warm")
        self._warming.add(task)
        task.add_done_callback(self._warming.discard)

    async def _warm_quietly(self, text: str) -> None:
        try:
            await self.previews.warm(text)
        except asyncio.CancelledError:
            raise
        except Exception:  # a reader fetches the page again; nothing is lost
            log.exception("warming link previews failed")

    async def close(self) -> None:
        """Cancel the previews still being fetched (shutdown)."""
        for task in list(self._warming):
            task.cancel()
        await asyncio.gather(*self._warming, return_exceptions=True)
