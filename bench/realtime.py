"""Live-event benchmark (issue 3): idle subscribers per worker, memory and delivery latency.

One ``asyncpress serve`` worker (SQLite file, embedded mode) pinned to CPU 0;
this driver pinned to CPU 1. For N = 1,000 and 5,000 idle subscribers on
``global`` over WebSocket, then over SSE:

- RSS per connection: the server's RSS with N idle streams open, minus its
  RSS before they connected (after a warm-up connection), divided by N;
- delivery latency: the driver POSTs an article and timestamps the arrival
  at every subscriber of bytes holding that article's marker (same clock,
  this process; see ``Tap``); ``ROUNDS`` articles, one after another. p50,
  p99 and max over all N x ROUNDS deliveries, and each round's first and
  last delivery.

    python -m bench.realtime [--sizes 1000,5000] [--rounds 10] [--profile DIR]
        [--variant NAME:KEY=VALUE,... (repeat: configurations side by side)]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import httpx
from servers.postgres import free_port
from servers.processes import Process, wait_for_port

from bench.features import env, rss_kib

RESULTS = Path(__file__).parent / "results"
CONNECT_BATCH = 200


def _env(url: str, **extra: str) -> dict[str, str]:
    implementation = os.environ.get("WS_IMPLEMENTATION", "websockets-sansio")
    return env(url, WS_IMPLEMENTATION=implementation, **extra)


def _variant(text: str) -> tuple[str, dict[str, str]]:
    """``name`` or ``name:KEY=VALUE,KEY=VALUE``: a server configuration to measure."""
    name, _, settings = text.partition(":")
    pairs = [item.split("=", 1) for item in settings.split(",") if item]
    return name, {key: value for key, value in pairs}  # noqa: C416 (pairs, not tuples)


async def _server_figures(port: int) -> dict[str, float]:
    """The server's own counters (direct writes, GC collections and policy) now."""
    async with httpx.AsyncClient(timeout=10) as client:
        text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
    wanted = ("asyncpress_events_process_total", "asyncpress_gc_")
    figures = {}
    for line in text.splitlines():
        if line.startswith(wanted):
            name, value = line.rsplit(" ", 1)
            figures[name] = float(value)
    return figures


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Tap(asyncio.Protocol):
    """A subscriber that only timestamps what arrives: no parsing on the hot path.

    The driver is one Python process on one core; a full client library
    (frame parsing, JSON decoding, one task per connection) would put its
    own queue into the measured latency. Each round's event carries a
    unique marker; ``data_received`` records when bytes holding it arrived.
    """

    def __init__(self, round_state: Round) -> None:
        self.round = round_state
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.ready: asyncio.Future[None] | None = None
        self.ready_marker = b""
        self.streaming = False
        self.received: dict[int, float] = {}
        self.websocket = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    async def until(self, marker: bytes) -> None:
        """Wait until what has arrived so far holds ``marker``."""
        self.ready_marker = marker
        self.ready = asyncio.get_running_loop().create_future()
        if marker in self.buffer:
            self.ready.set_result(None)
        async with asyncio.timeout(60):
            await self.ready

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        if not self.streaming:
            self.buffer += data
            if self.ready and not self.ready.done() and self.ready_marker in self.buffer:
                self.ready.set_result(None)
            return
        if self.websocket:
            data = self._frames(data)
        marker = self.round.marker
        if marker and marker in data and self.round.number not in self.received:
            self.received[self.round.number] = now
            self.round.arrived()

    def _frames(self, data: bytes) -> bytes:
        """Split what arrived into whole frames; answer pings; return the text payloads.

        The server's keepalive ping may arrive in the same read as an event,
        so frames are delimited by their headers (server frames are unmasked).
        """
        buffer = self.buffer + data
        texts = []
        while len(buffer) >= 2:
            size, start = buffer[1] & 0x7F, 2
            if size == 126:
                size, start = int.from_bytes(buffer[2:4]), 4
            elif size == 127:
                size, start = int.from_bytes(buffer[2:10]), 10
            if len(buffer) < start + size:
                break
            payload = buffer[start : start + size]
            if buffer[0] & 0x0F == 0x9:  # ping: answer it (masked, zero key)
                assert self.transport is not None
                assert size < 126  # control frames are short (RFC 6455 5.5)
                self.transport.write(b"\x8a" + bytes([0x80 | size]) + b"\0\0\0\0" + payload)
            else:
                texts.append(payload)
            buffer = buffer[start + size :]
        self.buffer = buffer
        return b"".join(texts)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.streaming:
            if self.ready and not self.ready.done():
                self.ready.set_exception(
                    ConnectionError(f"closed during the handshake: {self.buffer!r}")
                )
        elif self.round.marker and self.round.number not in self.received:
            self.round.lost += 1


class Round:
    """The article being delivered: its marker and how many subscribers still wait."""

    def __init__(self) -> None:
        self.number = -1
        self.marker = b""
        self.waiting = 0
        self.lost = 0
        self.done = asyncio.Event()

    def start(self, number: int, subscribers: int) -> str:
        self.number = number
        self.marker = f"bench-mark-r{number}-z".encode()
        self.waiting = subscribers
        self.done.clear()
        return self.marker.decode()

    def arrived(self) -> None:
        self.waiting -= 1
        if self.waiting == 0:
            self.done.set()


def _masked_text(text: str) -> bytes:
    payload = text.encode()
    assert len(payload) < 126
    return b"\x81" + bytes([0x80 | len(payload)]) + b"\0\0\0\0" + payload  # zero mask key


async def _tap(port: int, kind: str, state: Round) -> Tap:
    loop = asyncio.get_running_loop()
    _, tap = await loop.create_connection(lambda: Tap(state), "127.0.0.1", port)
    assert tap.transport is not None
    host = f"Host: 127.0.0.1:{port}\r\n"
    if kind == "ws":
        key = base64.b64encode(os.urandom(16)).decode()
        tap.websocket = True
        tap.transport.write(
            (
                f"GET /api/ws HTTP/1.1\r\n{host}Upgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
            ).encode()
        )
    else:
        tap.transport.write(f"GET /api/events?channels=global HTTP/1.1\r\n{host}\r\n".encode())
    await tap.until(b"\r\n\r\n")
    head = tap.buffer.split(b"\r\n\r\n", 1)[0]
    assert (b" 101 " if kind == "ws" else b" 200 ") in head.split(b"\r\n", 1)[0], head
    if b"permessage-deflate" in head.lower():
        raise RuntimeError("the server compresses frames; this driver reads plain text only")
    if kind == "ws":
        # Like a browser: the first message goes after the handshake's answer.
        tap.transport.write(_masked_text(json.dumps({"type": "subscribe", "channels": ["global"]})))
        await tap.until(b'"subscribed"')
    tap.buffer = b""
    tap.streaming = True
    return tap


async def scenario(
    kind: str, size: int, rounds: int, port: int, pid: int, spied: Path | None
) -> dict[str, Any]:
    state = Round()
    warm = await _tap(port, kind, state)  # first connection loads whatever is loaded lazily
    await asyncio.sleep(1.0)
    before = rss_kib(pid)
    before_connecting = await _server_figures(port)
    subscribers: list[Tap] = [warm]
    started = time.perf_counter()
    while len(subscribers) < size:
        batch = min(CONNECT_BATCH, size - len(subscribers))
        subscribers += await asyncio.gather(*(_tap(port, kind, state) for _ in range(batch)))
    connect_s = time.perf_counter() - started
    await asyncio.sleep(3.0)  # idle
    after = rss_kib(pid)

    latencies: list[float] = []
    per_round: list[list[float]] = []  # first and last delivery of each round, ms
    before_rounds = await _server_figures(port)
    spy = _profiler(pid, spied) if spied else None
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as api:
        user = {
            "username": f"b{kind}{size}",
            "email": f"b{kind}{size}@x.io",
            "password": "password1",
        }
        token = (await api.post("/api/users", json={"user": user})).json()["user"]["token"]
        headers = {"Authorization": f"Token {token}"}
        for n in range(rounds):
            title = state.start(n, len(subscribers))
            sent = time.perf_counter()
            response = await api.post(
                "/api/articles",
                json={"article": {"title": title, "description": "d", "body": "b"}},
                headers=headers,
            )
            assert response.status_code == 201, response.text
            try:
                async with asyncio.timeout(30):
                    await state.done.wait()
            except TimeoutError:
                missing = state.waiting
                raise TimeoutError(f"{kind}: {missing} subscribers never got round {n}") from None
            this_round = [(s.received[n] - sent) * 1000 for s in subscribers]
            per_round.append([round(min(this_round), 1), round(max(this_round), 1)])
            latencies += this_round
            await asyncio.sleep(0.2)
    if spy is not None:
        spy.send_signal(signal.SIGINT)  # py-spy writes its samples and exits
        await asyncio.to_thread(spy.wait, 60)
    server = await _server_figures(port)
    for s in subscribers:
        assert s.transport is not None
        s.transport.close()
    await asyncio.sleep(2.0)
    return {
        "protocol": kind,
        "subscribers": size,
        "connect_s": round(connect_s, 2),
        "rss_before_kib": before,
        "rss_after_kib": after,
        "rss_per_connection_kib": round((after - before) / size, 1),
        "deliveries": len(latencies),
        "lost": state.lost,
        "latency_ms": {
            "p50": round(statistics.median(latencies), 1),
            "p99": round(percentile(latencies, 0.99), 1),
            "max": round(max(latencies), 1),
        },
        "rounds_first_last_ms": per_round,
        "server": server,
        # Collections that ran while the subscribers connected and while the rounds
        # ran, and how long they stopped the server.
        "gc_while_connecting": _gc_delta(before_connecting, before_rounds),
        "gc_during_rounds": _gc_delta(before_rounds, server),
    }


def _gc_delta(start: dict[str, float], end: dict[str, float]) -> dict[str, float]:
    delta = {
        name: round(value - start.get(name, 0.0), 4)
        for name, value in end.items()
        if name.startswith(("asyncpress_gc_collections_total", "asyncpress_gc_pause_seconds_t"))
    }
    longest = 'asyncpress_gc_pause_seconds_max{generation="2"}'
    if end.get(longest, 0.0) > start.get(longest, 0.0):
        delta["longest_full_collection_s"] = round(end[longest], 4)
    return delta


def _profiler(pid: int, out: Path) -> subprocess.Popen[bytes]:
    """Sample the server's event-loop thread (without pausing it) while the rounds run."""
    spy = Path(sys.executable).with_name("py-spy")
    command = [
        str(spy),
        "record",
        "-p",
        str(pid),
        "--nonblocking",
        "-r",
        "200",
        "-f",
        "raw",
        "-o",
        str(out),
    ]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603


async def run(
    sizes: list[int],
    rounds: int,
    work: Path,
    protocols: list[str],
    profile: Path | None,
    variants: list[tuple[str, dict[str, str]]],
) -> list[dict[str, Any]]:
    results = []
    for kind in protocols:
        for size in sizes:
            for variant, extra in variants:
                spied = profile / f"{kind}-{size}-{variant}.txt" if profile else None
                name = f"{kind}-{size}-{variant}"
                result = await _case(name, kind, size, rounds, work, spied, extra)
                result["variant"] = variant
                print(json.dumps(result), flush=True)
                results.append(result)
    return results


async def _case(
    name: str,
    kind: str,
    size: int,
    rounds: int,
    work: Path,
    spied: Path | None,
    extra: dict[str, str],
) -> dict[str, Any]:
    """One server (fresh database) and one scenario on it."""
    url = f"sqlite+aiosqlite:///{work}/{name}.db"
    migrate = Process(["-m", "asyncpress.cli", "db", "upgrade"], work / "m.log", _env(url))
    assert migrate.wait(120) == 0, migrate.output()
    port = free_port()
    command = ["taskset", "-c", "0", sys.executable, "-m", "asyncpress.cli", "serve"]
    server = Process(
        [*command, "--port", str(port)], work / f"{name}.log", _env(url, **extra), raw=True
    )
    try:
        wait_for_port(port)
        return await scenario(kind, size, rounds, port, server.popen.pid, spied)
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,5000")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--protocols", default="ws,sse")
    parser.add_argument(
        "--profile", type=Path, help="write py-spy samples (raw) of the server to this folder"
    )
    parser.add_argument(
        "--variant",
        action="append",
        type=_variant,
        help="NAME or NAME:KEY=VALUE,...: server settings to measure (repeat to compare; "
        "default: the defaults)",
    )
    args = parser.parse_args()
    os.sched_setaffinity(0, {1})
    sizes = [int(s) for s in args.sizes.split(",")]
    with TemporaryDirectory() as tmp:
        protocols = args.protocols.split(",")
        if args.profile:
            args.profile.mkdir(parents=True, exist_ok=True)
        variants = args.variant or [("default", {})]
        results = asyncio.run(run(sizes, args.rounds, Path(tmp), protocols, args.profile, variants))
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"realtime-{stamp}.json"
    out.write_text(json.dumps({"rounds": args.rounds, "results": results}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
