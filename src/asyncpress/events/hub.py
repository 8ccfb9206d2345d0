"""The per-process hub: reads the event log and hands events to local connections.

One pump task per process reads new log entries (one short session per
batch) and routes each to the connections subscribed to its channels. It
wakes when this process commits an event, when Redis says another process
did, and every ``EVENTS_POLL_S`` regardless, so nothing depends on Redis
being up: after an outage the pump simply reads on from where it was.

Each connection has a bounded queue. A connection whose queue fills (its
client stopped reading) is cut off, so a slow client costs only its own
queue and never delays the pump.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import gc
import logging
import random
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from asyncpress.core.config import Settings
from asyncpress.core.redis import redis_client
from asyncpress.events import journal
from asyncpress.events.channels import FEED, Viewer
from asyncpress.events.journal import LoggedEvent
from asyncpress.fast.gc_policy import Collector
from asyncpress.fast.wire import DirectWriter

logger = logging.getLogger(__name__)

REDIS_CHANNEL = "asyncpress:events"
BATCH = 500
PRUNE_EVERY_S = 60.0

# An execution option marking the hub's own reads (tests leave them out of
# per-request statement counts).
BACKGROUND = "asyncpress_background"

GOING_AWAY = 1001
# How long a shutdown signal waits for the streams' goodbyes before the
# server's own shutdown goes on.
STREAMS_END_WITHIN_S = 2.0
TRY_AGAIN_LATER = 1013
# How long a new subscription waits for the pump to read the log before it
# starts at the cursor the pump has (the log unreadable: the database down).
CATCH_UP_WITHIN_S = 2.0


@dataclass(frozen=True, slots=True)
class Close:
    """Tells a connection's sender to end the stream with ``code``."""

    code: int
    reason: str


class Reset:
    """Marks a replay that cannot reach back far enough: the client should refetch."""


RESET = Reset()


@dataclass(frozen=True, slots=True)
class Replay:
    """Tells a connection's sender to send missed events first."""

    since: int
    keys: frozenset[str]
    upto: int


Outgoing = LoggedEvent | Replay | Close | dict[str, Any]


class Offered(enum.Enum):
    REFUSED = "refused"  # the stream is closing, or was just cut off for a full queue
    QUEUED = "queued"  # the stream's sender will send it
    WRITTEN = "written"  # written straight to the socket (asyncpress.fast.wire)


@dataclass(eq=False, slots=True)
class Connection:
    kind: str
    limit: int
    viewer: Viewer | None = None
    # routing key → pump cursor when it was subscribed
    keys: dict[str, int] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)  # channel name → routing key
    queue: asyncio.Queue[Outgoing] = field(default_factory=asyncio.Queue)
    closing: Close | None = None
    # Set by the sender: cuts a send that is stuck on a client that stopped reading.
    cut: Callable[[], None] | None = None
    # Set by the router when the server offers one (asyncpress.fast.wire).
    direct: DirectWriter | None = None
    # True while the sender waits for the queue: nothing of this stream is in flight.
    idle: bool = False
    era: int = 0  # see asyncpress.fast.gc_policy

    def offer(self, item: Outgoing) -> Offered:
        """Send or queue an outgoing item; a full queue cuts the connection off.

        An event goes straight to the socket when nothing is queued or being
        sent ahead of it; everything else keeps its place in the queue.
        """
        if self.closing is not None:
            return Offered.REFUSED
        if (
            self.idle
            and self.direct is not None
            and type(item) is LoggedEvent
            and self.queue.empty()
        ):
            try:
                if self.direct.ready():
                    self.direct.write_event(item)
                    return Offered.WRITTEN
            except Exception:
                # The writer reads the server's internals; if they are not what
                # it expects, this stream takes the queue from now on instead of
                # failing every delivery of the batch.
                logger.exception("direct writes to a %s stream failed; queueing", self.kind)
                self.direct = None
        if self.queue.qsize() >= self.limit:
            self.finish(TRY_AGAIN_LATER, "client is not reading fast enough")
            if self.cut is not None:
                self.cut()
            return Offered.REFUSED
        self.queue.put_nowait(item)
        return Offered.QUEUED

    def finish(self, code: int, reason: str) -> None:
        """End the stream after what is already queued."""
        if self.closing is None:
            self.closing = Close(code, reason)
            self.queue.put_nowait(self.closing)


class FollowGraph(Protocol):
    """Who follows whom, as the hub needs it to route ``feed`` events.

    Given by the app (``asyncpress.profiles.repository.Follows``), so the
    event plumbing sits below the domains that publish through it.
    """

    async def followers_among(
        self, session: AsyncSession, author_ids: Collection[int], user_ids: Collection[int]
    ) -> dict[int, set[int]]: ...

    async def followees(self, session: AsyncSession, user_id: int) -> set[int]: ...


class Hub:
    def __init__(
        self,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        follows: FollowGraph,
    ) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        self.follows = follows
        self.cursor = 0
        self.connections: set[Connection] = set()
        self._by_key: dict[str, set[Connection]] = {}
        self._wake = asyncio.Event()
        # Pump passes begun and finished; a subscription waits for one begun
        # after it asked (see catch_up).
        self._passes_begun = 0
        self._passes_done = 0
        self._pass_done = asyncio.Condition()
        # With no stream open a pass reads nothing (every commit wakes the
        # pump, which would read the events back for nobody):
        # the cursor is then behind the log, and the next pass that has a
        # stream to serve, or a subscription waiting for it (catch_up),
        # first moves it to the head.
        self._behind = False
        self._head_asked = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._publishing: set[asyncio.Task[None]] = set()
        self._redis = (
            redis_client(settings.redis_url, 0.25) if settings.redis_url is not None else None
        )
        self.collector = Collector() if settings.gc_freeze else None
        self.shutting_down = False
        self._all_gone = asyncio.Event()  # set when the last stream disconnects
        self.redis_connected = False
        self.counters = {
            "delivered": 0,
            "direct": 0,
            "dropped": 0,
            "published": 0,
            "publish_failed": 0,
        }

    @contextlib.asynccontextmanager
    async def _session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessionmaker() as session:
            await session.connection(execution_options={BACKGROUND: True})
            yield session

    @property
    def passes(self) -> int:
        """Passes of the pump over the event log finished so far."""
        return self._passes_done

    # -- lifecycle ---------------------------------------------------------

    async def start(self) -> None:
        async with self._session() as session:
            _, self.cursor = await journal.bounds(session)
        self._spawn(self._pump(), "pump")
        self._spawn(self._prune_forever(), "prune")
        if self.settings.redis_url is not None:
            self._spawn(self._listen(self.settings.redis_url), "redis-listener")
        if self.collector is not None:
            self._spawn(self._collect_forever(self.collector), "gc-policy")

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=f"events-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def begin_shutdown(self) -> None:
        """Ask every stream to end (WS close 1001, SSE end); refuse new ones."""
        self.shutting_down = True
        for conn in list(self.connections):
            conn.finish(GOING_AWAY, "server is shutting down")

    async def end_streams(self, within_s: float = STREAMS_END_WITHIN_S) -> None:
        """Ask every stream to end, and wait until they have (or ``within_s`` passed)."""
        self.begin_shutdown()
        try:
            async with asyncio.timeout(within_s):
                while self.connections:
                    self._all_gone.clear()
                    await self._all_gone.wait()
        except TimeoutError:
            # A stream stuck on a client that stopped reading: the server
            # closes what is left when its own shutdown runs.
            return

    async def stop(self) -> None:
        self.begin_shutdown()
        tasks = [*self._tasks, *self._publishing]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._redis is not None:
            await self._redis.aclose()

    # -- connections -------------------------------------------------------

    def connect(self, kind: str, viewer: Viewer | None) -> Connection:
        conn = Connection(kind=kind, limit=self.settings.events_queue_size, viewer=viewer)
        if self.collector is not None:
            conn.era = self.collector.stream_opened()
        self.connections.add(conn)
        if self.shutting_down:
            conn.finish(GOING_AWAY, "server is shutting down")
        return conn

    def disconnect(self, conn: Connection) -> None:
        if conn not in self.connections:
            return
        self.connections.discard(conn)
        if not self.connections:
            self._all_gone.set()
        if self.collector is not None:
            self.collector.stream_closed(conn.era)
        for key in conn.keys:
            self._unindex(key, conn)
        if conn.closing is not None and conn.closing.code == TRY_AGAIN_LATER:
            self.counters["dropped"] += 1
            logger.info("dropped a %s stream whose client is not reading", conn.kind)

    async def catch_up(self) -> None:
        """Return once the pump has read every event committed before this call.

        Another process's commit reaches this pump only when Redis or the
        next poll says so, so the cursor can lag the log by up to
        ``EVENTS_POLL_S``. A subscription made at a lagging cursor would be
        handed events committed before it was asked for. Waiting for one
        pass of the pump that began after the call (shared by everyone who
        subscribes meanwhile) makes a subscription start at the log's head.
        """
        wanted = self._passes_begun + 1
        self._head_asked = True
        self._wake.set()
        try:
            async with asyncio.timeout(CATCH_UP_WITHIN_S), self._pass_done:
                await self._pass_done.wait_for(lambda: self._passes_done >= wanted)
        except TimeoutError:
            # The log cannot be read now; the stream starts where the pump is,
            # and the pump reads on from there (not from the head: the events
            # between would be this stream's).
            self._behind = False
            logger.warning("a subscription starts at the pump's cursor: the log was not read")

    def subscribe(self, conn: Connection, names: dict[str, str]) -> frozenset[str]:
        """Add channels; returns the routing keys that are new to the connection.

        Call ``catch_up`` first: the keys start at the pump's cursor.
        """
        new = set()
        for name, key in names.items():
            conn.names[name] = key
            if key not in conn.keys:
                conn.keys[key] = self.cursor
                self._by_key.setdefault(key, set()).add(conn)
                new.add(key)
        return frozenset(new)

    def unsubscribe(self, conn: Connection, names: list[str]) -> None:
        for name in names:
            key = conn.names.pop(name, None)
            if key is not None and key not in conn.names.values():
                conn.keys.pop(key, None)
                self._unindex(key, conn)

    def _unindex(self, key: str, conn: Connection) -> None:
        holders = self._by_key.get(key)
        if holders is not None:
            holders.discard(conn)
            if not holders:
                del self._by_key[key]

    # -- publishing --------------------------------------------------------

    def committed(self) -> None:
        """Called once a unit of work that appended events commits (app.after_commit)."""
        self._wake.set()
        if self._redis is not None:
            task = asyncio.get_running_loop().create_task(self._publish())
            self._publishing.add(task)
            task.add_done_callback(self._publishing.discard)

    async def _publish(self) -> None:
        assert self._redis is not None
        # Twice: after a Redis restart the first try meets a pooled connection
        # the server has closed; the second takes a fresh one.
        for attempt in (1, 2):
            try:
                await self._redis.publish(REDIS_CHANNEL, "1")
            except (RedisError, OSError, TimeoutError) as exc:
                if attempt == 2:
                    # The other workers' pumps read the log on their next poll.
                    self.counters["publish_failed"] += 1
                    if self.counters["publish_failed"] % 100 == 1:
                        logger.warning("event wake-up not sent through Redis: %s", exc)
            else:
                self.counters["published"] += 1
                return

    # -- the pump ----------------------------------------------------------

    async def _pump(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.events_poll_s):
                    await self._wake.wait()
            self._wake.clear()
            self._passes_begun += 1
            this_pass = self._passes_begun
            head_asked, self._head_asked = self._head_asked, False
            try:
                if not (self.connections or head_asked):
                    self._behind = True
                else:
                    if self._behind:
                        await self._to_head()
                    while await self._dispatch_batch() == BATCH:
                        pass
            except Exception:
                logger.exception("reading the event log failed; retrying")
                self._head_asked = self._head_asked or head_asked
                await asyncio.sleep(1.0)
                self._wake.set()  # whoever waits for a pass still waits for one
                continue
            async with self._pass_done:
                self._passes_done = this_pass
                self._pass_done.notify_all()

    async def _to_head(self) -> None:
        """The cursor to the log's newest id, skipping what no stream was open for.

        Ids are taken in commit order (journal), so no event below the head
        can still appear.
        """
        async with self._session() as session:
            _, head = await journal.bounds(session)
        self.cursor = max(self.cursor, head)
        self._behind = False

    async def _dispatch_batch(self) -> int:
        async with self._session() as session:
            batch = await journal.after(session, self.cursor, BATCH)
        authors = {a for a in (e.feed_author() for e in batch) if a is not None}
        fans = await self._fans(authors)
        # Delivery is synchronous (queue puts): no session is open here.
        for event in batch:
            self._route(event, fans)
            self.cursor = event.id
        return len(batch)

    def _feed_viewers(self) -> set[int]:
        return {c.viewer.id for c in self._by_key.get(FEED, ()) if c.viewer is not None}

    async def _fans(self, authors: set[int]) -> dict[int, set[int]]:
        """Which ``feed`` subscribers of this process follow each author.

        One query, repeated only for feed subscribers who joined while it
        ran (they joined at the old cursor, so this batch is theirs too).
        """
        fans: dict[int, set[int]] = {author: set() for author in authors}
        asked: set[int] = set()
        while authors and (viewers := self._feed_viewers() - asked):
            async with self._session() as session:
                found = await self.follows.followers_among(session, authors, viewers)
            for author, followers in found.items():
                fans[author] |= followers
            asked |= viewers
        return fans

    def _route(self, event: LoggedEvent, fans: dict[int, set[int]]) -> None:
        targets: set[Connection] = set()
        for key in event.channels:
            targets.update(self._by_key.get(key, ()))
        author = event.feed_author()
        if author is not None and author in fans:
            followers = fans[author]
            targets.update(
                c
                for c in self._by_key.get(FEED, ())
                if c.viewer is not None and c.viewer.id in followers
            )
        for conn in targets:
            offered = conn.offer(event)
            if offered is not Offered.REFUSED:
                self.counters["delivered"] += 1
                if offered is Offered.WRITTEN:
                    self.counters["direct"] += 1

    # -- replay ------------------------------------------------------------

    def replay_request(self, conn: Connection, since: int, keys: frozenset[str]) -> Replay:
        """What ``replay`` needs, fixed at subscription time."""
        return Replay(since=since, keys=keys, upto=min(conn.keys[k] for k in keys))

    async def replay(self, conn: Connection, request: Replay) -> AsyncIterator[LoggedEvent | Reset]:
        """The events after ``request.since`` on ``request.keys``, oldest first.

        Everything up to the cursor at subscription time comes from the log;
        what came later reaches the connection's queue live, so nothing is
        sent twice or skipped. Yields only ``RESET`` when the log no longer
        reaches back to ``since``; the caller sends a ``reset`` event and
        carries on live.
        """
        async with self._session() as session:
            oldest, newest = await journal.bounds(session)
            fans_of: set[int] = set()
            if FEED in request.keys and conn.viewer is not None:
                fans_of = await self.follows.followees(session, conn.viewer.id)
        if request.since > newest or (oldest is not None and request.since < oldest - 1):
            yield RESET
            return
        earlier = {k: at for k, at in conn.keys.items() if k not in request.keys}
        last = request.since
        while last < request.upto:
            async with self._session() as session:
                batch = await journal.after(session, last, BATCH)
            if not batch:
                return
            for event in batch:
                if event.id > request.upto:
                    return
                last = event.id
                if self._wanted(event, request.keys, fans_of) and not self._seen(event, earlier):
                    yield event

    @staticmethod
    def _wanted(event: LoggedEvent, keys: frozenset[str], fans_of: set[int]) -> bool:
        if event.channels & keys:
            return True
        author = event.feed_author()
        return FEED in keys and author is not None and author in fans_of

    @staticmethod
    def _seen(event: LoggedEvent, earlier: dict[str, int]) -> bool:
        """Whether the event already went out live on another of the connection's channels."""
        return any(key in event.channels and event.id > at for key, at in earlier.items())

    # -- Redis wake-ups ----------------------------------------------------

    async def _listen(self, url: str) -> None:
        backoff = 0.1
        while True:
            client = redis_client(url, None, health_check_interval=10)
            try:
                async with client.pubsub() as pubsub:
                    async with asyncio.timeout(5.0):
                        await pubsub.subscribe(REDIS_CHANNEL)
                    if not self.redis_connected:
                        logger.info("event hub subscribed to Redis")
                    self.redis_connected = True
                    backoff = 0.1
                    self._wake.set()  # read what was committed while we were away
                    while True:
                        message = await pubsub.get_message(
                            ignore_subscribe_messages=True, timeout=self.settings.events_poll_s
                        )
                        if message is not None:
                            self._wake.set()
            except (RedisError, OSError) as exc:
                if self.redis_connected:
                    logger.warning("event hub lost Redis (%s); reconnecting", exc)
                self.redis_connected = False
            finally:
                await client.aclose()
            await asyncio.sleep(backoff * (0.5 + random.random()))  # noqa: S311
            backoff = min(backoff * 2, 5.0)

    # -- garbage collection ------------------------------------------------

    async def _collect_forever(self, collector: Collector) -> None:
        while True:
            await asyncio.sleep(1.0)
            done = collector.step(len(self.connections))
            if done is not None:
                logger.info(
                    "gc policy %s with %d streams open: %d objects frozen",
                    done,
                    len(self.connections),
                    gc.get_freeze_count(),
                )

    # -- retention ---------------------------------------------------------

    async def _prune_forever(self) -> None:
        keep_for = timedelta(hours=self.settings.events_keep_hours)
        while True:
            await asyncio.sleep(PRUNE_EVERY_S)
            try:
                async with self._session() as session:
                    await journal.prune(session, self.settings.events_keep_count, keep_for)
            except Exception:
                logger.exception("pruning the event log failed")
