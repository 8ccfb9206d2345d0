"""Clients for the live-event tests: served apps, SSE and WebSocket readers."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from anyio.to_thread import run_sync
from servers.postgres import free_port
from servers.processes import TEST_SECRET, Process
from websockets.asyncio.client import ClientConnection, connect

from tests.support.http import TLS


class Served:
    """``asyncpress serve`` in its own process on a free 127.0.0.1 port."""

    def __init__(
        self,
        database_url: str,
        logs: Path,
        name: str,
        *,
        workers: str = "1",
        port: str | None = None,  # str, as the **env values: a port given again on a restart
        **env: str,
    ) -> None:
        self.env = env
        self.database_url = database_url
        # Another test worker can be handed the same free port between our
        # probe and our bind: then this server cannot listen, and pick again.
        for attempt in range(1 if port else 3):
            self.port = int(port) if port else free_port()
            self.base = f"http://127.0.0.1:{self.port}"
            self.ws_base = f"ws://127.0.0.1:{self.port}"
            self.process = Process(
                ["-m", "asyncpress.cli", "serve", "--port", str(self.port), "--workers", workers],
                logs / f"{name}.log",
                {
                    "DATABASE_URL": database_url,
                    "ENVIRONMENT": "production",
                    "JWT_SECRET": TEST_SECRET,
                    "LOG_LEVEL": "INFO",
                    "ARGON2_TIME_COST": "1",
                    "ARGON2_MEMORY_KIB": "64",
                    "MAILBOX_DIR": str(logs / f"{name}-mail"),
                    # Tests register many accounts from 127.0.0.1; the limits are tested apart.
                    "RATE_LIMITS": "false",
                    **env,
                },
            )
            if self._ready(last_try=attempt == (0 if port else 2)):
                return

    def _ready(self, *, last_try: bool) -> bool:
        """Whether this process (not another one on the port) answers; False: bind lost."""
        deadline = time.monotonic() + 30
        while True:
            answered = False
            with suppress(httpx.TransportError):
                health = httpx.get(f"{self.base}/api/health", verify=TLS, timeout=1)
                answered = health.status_code == 200
            if answered and listens(self.process.popen.pid, self.port):
                return True
            exited = self.process.popen.poll() is not None
            if exited and "address already in use" in self.process.output() and not last_try:
                self.process.wait(timeout=10)
                return False
            if exited or time.monotonic() > deadline:
                output = self.process.output()
                self.process.kill()
                raise RuntimeError(
                    f"server did not start (or is not listening on {self.port}):\n{output}"
                )
            time.sleep(0.1)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base, verify=TLS, timeout=10)

    def metric(self, name: str) -> dict[str, float]:
        text = httpx.get(f"{self.base}/metrics", verify=TLS, timeout=5).text
        return {
            line.split(" ")[0]: float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(name)
        }


def listens(pid: int, port: int) -> bool:
    """Whether process ``pid`` holds the socket listening on 127.0.0.1:``port`` (Linux)."""
    wanted = f"0100007F:{port:04X}"
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == wanted and fields[3] == "0A":  # 0A: LISTEN
            inodes.add(f"socket:[{fields[9]}]")
    fds = Path(f"/proc/{pid}/fd")
    try:
        return any(os.readlink(fd) in inodes for fd in fds.iterdir())
    except (FileNotFoundError, ProcessLookupError):
        return False  # the process (or one of its descriptors) went away meanwhile


@dataclass
class SseEvent:
    event: str | None = None
    id: str | None = None
    data: Any = None
    comment: str | None = None


@dataclass
class SseReader:
    """Reads one event stream in the background into a queue."""

    response: httpx.Response
    events: asyncio.Queue[SseEvent] = field(default_factory=asyncio.Queue)
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    async def pump(self) -> None:
        current = SseEvent()
        try:
            async for line in self.response.aiter_lines():
                if line == "":
                    if current != SseEvent():
                        await self.events.put(current)
                    current = SseEvent()
                elif line.startswith(":"):
                    current.comment = line[1:].strip()
                else:
                    key, _, value = line.partition(":")
                    value = value[1:] if value.startswith(" ") else value
                    if key == "data":
                        current.data = json.loads(value)
                    elif key in ("event", "id"):
                        setattr(current, key, value)
        except httpx.HTTPError:
            pass
        finally:
            self.ended.set()

    async def next(self, within: float = 10.0, *, skip_comments: bool = True) -> SseEvent:
        async with asyncio.timeout(within):
            while True:
                item = await self.events.get()
                if not (skip_comments and item.event is None and item.comment is not None):
                    return item

    async def take(self, count: int, within: float = 10.0) -> list[SseEvent]:
        return [await self.next(within) for _ in range(count)]


@asynccontextmanager
async def sse(
    client: httpx.AsyncClient, url: str, headers: dict[str, str] | None = None
) -> AsyncIterator[SseReader]:
    """An open event stream (status 200 checked) read in the background."""
    async with client.stream(
        "GET", url, headers=headers, timeout=httpx.Timeout(10, read=None)
    ) as r:
        assert r.status_code == 200, (await r.aread()).decode()
        reader = SseReader(r)
        task = asyncio.create_task(reader.pump())
        try:
            yield reader
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


class Socket:
    """A WebSocket client that reads JSON messages with a timeout."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection

    async def send(self, message: Any) -> None:
        await self.connection.send(message if isinstance(message, str) else json.dumps(message))

    async def recv(self, within: float = 10.0) -> dict[str, Any]:
        async with asyncio.timeout(within):
            received: dict[str, Any] = json.loads(await self.connection.recv())
            return received

    async def event(self, within: float = 10.0) -> dict[str, Any]:
        """The next ``event`` message (skipping acknowledgements)."""
        while True:
            message = await self.recv(within)
            if message["type"] == "event":
                return message

    async def subscribe(self, channels: list[str], **extra: Any) -> dict[str, Any]:
        await self.send({"type": "subscribe", "channels": channels, **extra})
        reply = await self.recv()
        assert reply["type"] == "subscribed", reply
        return reply


@asynccontextmanager
async def socket(url: str, **kwargs: Any) -> AsyncIterator[Socket]:
    async with connect(url, open_timeout=10, close_timeout=5, **kwargs) as connection:
        yield Socket(connection)


async def until(check: Callable[[], bool], within: float = 20.0) -> None:
    """Wait until ``check()`` (run in a thread: it may block) is true."""
    async with asyncio.timeout(within):
        while True:
            if await run_sync(check):
                return
            await asyncio.sleep(0.2)  # another process's state: nothing to await but time
