"""Live events across real processes: two app servers, PostgreSQL and Redis on 127.0.0.1.

The servers poll the event log only every 30 s here, so anything that
arrives sooner travelled through Redis (or the server's own commit hook).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import socket as sockets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from anyio.to_thread import run_sync
from servers.postgres import empty_database
from servers.processes import RedisServer
from websockets.exceptions import ConnectionClosed

from tests.factories import Account, add_comment, create_article, register
from tests.support.live import Served, socket, sse, until

pytestmark = pytest.mark.postgres_only

SLOW_POLL = {"EVENTS_POLL_S": "30"}


@pytest.fixture
def pair(
    database_url: str, tmp_path: Path, redis_server: RedisServer
) -> Iterator[tuple[Served, Served]]:
    asyncio.run(empty_database(database_url))
    env = {"REDIS_URL": redis_server.url, **SLOW_POLL}
    a = Served(database_url, tmp_path, "worker-a", **env)
    b = Served(database_url, tmp_path, "worker-b", **env)
    yield a, b
    for app in (a, b):
        app.process.stop()


@pytest.fixture
async def http_a(pair: tuple[Served, Served]) -> AsyncIterator[httpx.AsyncClient]:
    async with pair[0].client() as client:
        yield client


class TestAcrossWorkers:
    async def test_a_socket_on_a_hears_a_comment_posted_through_b(
        self, pair: tuple[Served, Served], http_a: httpx.AsyncClient
    ) -> None:
        a, b = pair
        ann = await register(http_a, "ann")
        article = await create_article(http_a, ann, title="Shared")
        async with b.client() as http_b, socket(f"{a.ws_base}/api/ws") as ws:
            await ws.subscribe([f"article:{article['slug']}"])
            ben = await register(http_b, "ben")
            await add_comment(http_b, ben, article["slug"], "via B")
            event = await ws.event(within=5)  # far less than the 30 s poll
        assert event["event"] == "comment.created"
        assert event["data"]["comment"]["body"] == "via B"

    @pytest.mark.servers_only  # MariaDB too: its event ids are ordered by a row lock
    async def test_a_stream_starts_after_what_another_worker_committed_before_it(
        self, database_url: str, tmp_path: Path
    ) -> None:
        # No Redis and a 30 s poll: A is never told of B's commits, so only a
        # subscription that reads the log first can tell them from its own.
        await empty_database(database_url)

        def serve(name: str) -> Served:
            return Served(database_url, tmp_path, name, **SLOW_POLL)

        a = await run_sync(serve, "quiet-a")
        try:
            b = await run_sync(serve, "quiet-b")
        except Exception:
            await run_sync(a.process.stop)
            raise
        try:
            async with a.client() as http_a, b.client() as http_b:
                ann = await register(http_b, "ann")
                article = await create_article(http_b, ann, title="Earlier")
                channel = f"article:{article['slug']}"
                async with (
                    socket(f"{a.ws_base}/api/ws") as ws,
                    sse(http_a, f"/api/events?channels={channel}") as stream,
                ):
                    await ws.subscribe([channel])
                    # A's own commit wakes A's pump, which then reads B's article too.
                    await add_comment(http_a, ann, article["slug"], "after")
                    first_ws = await ws.event(within=5)
                    first_sse = (await stream.next(within=5)).event
        finally:
            for app in (a, b):
                await run_sync(app.process.stop)
        assert [first_ws["event"], first_sse] == ["comment.created"] * 2

    async def test_redis_restart_loses_nothing(
        self, pair: tuple[Served, Served], http_a: httpx.AsyncClient, redis_server: RedisServer
    ) -> None:
        a, b = pair
        ann = await register(http_a, "ann")
        article = await create_article(http_a, ann, title="Outage")
        channel = f"article:{article['slug']}"
        async with (
            b.client() as http_b,
            socket(f"{a.ws_base}/api/ws") as on_a,
            sse(http_b, f"/api/events?channels={channel}") as on_b,
        ):
            await on_a.subscribe([channel])
            await asyncio.sleep(0.3)
            await add_comment(http_b, ann, article["slug"], "before")
            assert (await on_a.event(within=5))["data"]["comment"]["body"] == "before"
            assert (await on_b.next()).data["data"]["comment"]["body"] == "before"

            await run_sync(redis_server.kill)
            # Committed through B while Redis is down: A's hub is not told.
            await add_comment(http_b, ann, article["slug"], "during-1")
            await add_comment(http_b, ann, article["slug"], "during-2")
            await run_sync(redis_server.start)  # same port: both hubs reconnect and catch up
            await until(
                lambda: all(
                    app.metric("asyncpress_events_redis_connected")
                    == {"asyncpress_events_redis_connected": 1.0}
                    for app in (a, b)
                )
            )
            # Well inside A's 30 s poll: A read the log when it resubscribed.
            caught_up = [await on_a.event(within=5) for _ in range(2)]
            await add_comment(http_a, ann, article["slug"], "after")  # to B through Redis again
            got_a = [*caught_up, await on_a.event(within=5)]
            got_b = [await on_b.next(within=5) for _ in range(3)]
        expected = ["during-1", "during-2", "after"]
        assert [e["data"]["comment"]["body"] for e in got_a] == expected
        assert [e.data["data"]["comment"]["body"] for e in got_b] == expected
        assert [e["id"] for e in got_a] == [int(e.id or 0) for e in got_b]


def _raw_socket(port: int) -> sockets.socket:
    """A TCP connection with a tiny receive buffer, for a client that never reads."""
    raw = sockets.socket(sockets.AF_INET, sockets.SOCK_STREAM)
    raw.setsockopt(sockets.SOL_SOCKET, sockets.SO_RCVBUF, 2048)
    raw.connect(("127.0.0.1", port))
    return raw


def _stalled_websocket(port: int, channel: str) -> sockets.socket:
    raw = _raw_socket(port)
    key = base64.b64encode(os.urandom(16)).decode()
    raw.sendall(
        (
            f"GET /api/ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += raw.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    payload = json.dumps({"type": "subscribe", "channels": [channel]}).encode()
    mask = os.urandom(4)
    assert len(payload) < 126
    frame = bytes([0x81, 0x80 | len(payload)]) + mask
    frame += bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
    raw.sendall(frame)
    return raw  # and never read again


def _stalled_sse(port: int, channel: str) -> sockets.socket:
    raw = _raw_socket(port)
    raw.sendall(
        f"GET /api/events?channels={channel} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    )
    return raw


def _is_closed_by_server(raw: sockets.socket) -> bool:
    """Drain what the server sent; True once it has closed (EOF or reset)."""
    raw.setblocking(False)
    try:
        while True:
            chunk = raw.recv(65536)
            if not chunk:
                return True
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True


class TestSlowAndStopping:
    async def test_a_client_that_stops_reading_is_dropped_and_others_get_everything(
        self, database_url: str, tmp_path: Path
    ) -> None:
        await empty_database(database_url)
        app = await run_sync(
            lambda: Served(
                database_url,
                tmp_path,
                "slow",
                EVENTS_QUEUE_SIZE="8",
                EVENTS_SEND_TIMEOUT_S="2",
            )
        )
        try:
            async with app.client() as http:
                ann = await register(http, "ann")
                article = await create_article(http, ann, title="Busy")
                channel = f"article:{article['slug']}"
                stalled = [
                    await run_sync(_stalled_websocket, app.port, channel),
                    await run_sync(_stalled_sse, app.port, channel),
                ]
                async with socket(f"{app.ws_base}/api/ws") as reader:
                    await reader.subscribe([channel])
                    await asyncio.sleep(0.3)
                    # Enough to fill the kernel's socket buffers (up to 4 MiB) and the queue.
                    count = 520
                    bodies: list[str] = []

                    async def read_all() -> None:
                        # This client keeps reading while the comments are posted.
                        while len(bodies) < count:
                            event = await reader.event()
                            assert event["event"] == "comment.created"
                            bodies.append(event["data"]["comment"]["body"])

                    async with asyncio.TaskGroup() as group:
                        group.create_task(read_all())
                        for n in range(count):
                            await add_comment(http, ann, article["slug"], f"{n:04d}" + "x" * 9990)
                    assert [b[:4] for b in bodies] == [f"{n:04d}" for n in range(count)]

                    await until(
                        lambda: (
                            app.metric("asyncpress_events_connections")
                            == {
                                'asyncpress_events_connections{protocol="ws"}': 1.0,
                                'asyncpress_events_connections{protocol="sse"}': 0.0,
                            }
                        )
                    )
                    dropped = app.metric("asyncpress_events_process_total")
                    assert dropped['asyncpress_events_process_total{what="dropped"}'] == 2.0
                    # The server let go of both: their sockets end once drained.
                    await until(lambda: all(_is_closed_by_server(s) for s in stalled))
                    await reader.send({"type": "ping"})
                    assert await reader.recv() == {"type": "pong"}
        finally:
            for s in locals().get("stalled", []):
                s.close()
            await run_sync(app.process.stop)
        assert "Exception in ASGI application" not in app.process.output()

    async def test_sigterm_closes_sockets_with_1001_and_ends_streams(
        self, database_url: str, tmp_path: Path
    ) -> None:
        await empty_database(database_url)
        app = await run_sync(lambda: Served(database_url, tmp_path, "stopping"))
        async with app.client() as http:
            ann: Account = await register(http, "ann")
            async with (
                socket(f"{app.ws_base}/api/ws") as ws,
                sse(http, "/api/events?channels=global") as stream,
            ):
                await ws.subscribe(["global"])
                await create_article(http, ann, title="Last")
                await ws.event()
                await stream.next()
                app.process.popen.terminate()
                with pytest.raises(ConnectionClosed) as closed:
                    await ws.recv(within=10)
                assert closed.value.rcvd is not None
                assert closed.value.rcvd.code == 1001
                async with asyncio.timeout(10):
                    await stream.ended.wait()
        # uvicorn finishes its graceful shutdown, then re-raises the signal.
        code = await run_sync(app.process.wait, 15)
        assert code in (0, -signal.SIGTERM)
        assert "Application shutdown complete" in app.process.output()
