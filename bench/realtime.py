"""Live-event benchmark (issue 3): idle subscribers per worker, memory and delivery latency.

One ``asyncpress serve`` worker (SQLite file, embedded mode) pinned to CPU 0;
this driver pinned to CPU 1. For N = 1,000 and 5,000 idle subscribers on
``global`` over WebSocket, then over SSE:

- RSS per connection: the server's RSS with N idle streams open, minus its
  RSS before they connected (after a warm-up connection), divided by N;
- delivery latency: the driver POSTs an article and timestamps every
  subscriber's receipt of its ``article.created`` (same clock, this
  process); ``ROUNDS`` articles, one after another. p50, p99 and max over
  all N x ROUNDS deliveries.

    python -m bench.realtime [--sizes 1000,5000] [--rounds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import httpx
from tests.support.postgres import free_port
from tests.support.processes import Process, wait_for_port
from websockets.asyncio.client import ClientConnection, connect

from bench.features import env, rss_kib

RESULTS = Path(__file__).parent / "results"
CONNECT_BATCH = 200


def _env(url: str) -> dict[str, str]:
    return env(url, WS_IMPLEMENTATION=os.environ.get("WS_IMPLEMENTATION", "websockets-sansio"))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class WsSubscriber:
    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self.received: dict[str, float] = {}

    async def listen(self) -> None:
        async for raw in self.connection:
            message = json.loads(raw)
            if message.get("type") == "event":
                self.received[message["data"]["article"]["slug"]] = time.perf_counter()


class SseSubscriber:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.received: dict[str, float] = {}

    async def listen(self) -> None:
        while line := await self.reader.readline():
            if line.startswith(b"data: "):
                document = json.loads(line[6:])
                if "data" in document and "article" in document["data"]:
                    self.received[document["data"]["article"]["slug"]] = time.perf_counter()


async def _ws(port: int) -> WsSubscriber:
    connection = await connect(f"ws://127.0.0.1:{port}/api/ws", open_timeout=60, max_queue=64)
    await connection.send(json.dumps({"type": "subscribe", "channels": ["global"]}))
    reply = json.loads(await connection.recv())
    assert reply["type"] == "subscribed", reply
    return WsSubscriber(connection)


async def _sse(port: int) -> SseSubscriber:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"GET /api/events?channels=global HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    )
    await writer.drain()
    status = await reader.readline()
    assert b" 200 " in status, status
    while (await reader.readline()) not in (b"\r\n", b""):
        pass
    return SseSubscriber(reader, writer)


async def scenario(kind: str, size: int, rounds: int, port: int, pid: int) -> dict[str, Any]:
    opener = _ws if kind == "ws" else _sse
    warm = await opener(port)  # first connection loads whatever is loaded lazily
    await asyncio.sleep(1.0)
    before = rss_kib(pid)
    subscribers: list[Any] = [warm]
    started = time.perf_counter()
    while len(subscribers) < size:
        batch = min(CONNECT_BATCH, size - len(subscribers))
        subscribers += await asyncio.gather(*(opener(port) for _ in range(batch)))
    connect_s = time.perf_counter() - started
    listeners = [asyncio.create_task(s.listen()) for s in subscribers]
    await asyncio.sleep(3.0)  # idle
    after = rss_kib(pid)

    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as api:
        user = {
            "username": f"b{kind}{size}",
            "email": f"b{kind}{size}@x.io",
            "password": "password1",
        }
        token = (await api.post("/api/users", json={"user": user})).json()["user"]["token"]
        headers = {"Authorization": f"Token {token}"}
        for n in range(rounds):
            title = f"{kind} {size} round {n}"
            sent = time.perf_counter()
            response = await api.post(
                "/api/articles",
                json={"article": {"title": title, "description": "d", "body": "b"}},
                headers=headers,
            )
            slug = response.json()["article"]["slug"]
            deadline = time.perf_counter() + 30
            while sum(slug in s.received for s in subscribers) < len(subscribers):
                if time.perf_counter() > deadline:
                    raise TimeoutError(f"{kind}: not every subscriber got {slug}")
                await asyncio.sleep(0.01)
            latencies += [(s.received[slug] - sent) * 1000 for s in subscribers]
            await asyncio.sleep(0.2)
    for task in listeners:
        task.cancel()
    await asyncio.gather(*listeners, return_exceptions=True)
    for s in subscribers:
        if kind == "ws":
            await s.connection.close()
        else:
            s.writer.close()
    await asyncio.sleep(2.0)
    return {
        "protocol": kind,
        "subscribers": size,
        "connect_s": round(connect_s, 2),
        "rss_before_kib": before,
        "rss_after_kib": after,
        "rss_per_connection_kib": round((after - before) / size, 1),
        "deliveries": len(latencies),
        "latency_ms": {
            "p50": round(statistics.median(latencies), 1),
            "p99": round(percentile(latencies, 0.99), 1),
            "max": round(max(latencies), 1),
        },
    }


async def run(
    sizes: list[int], rounds: int, work: Path, protocols: list[str]
) -> list[dict[str, Any]]:
    results = []
    for kind in protocols:
        for size in sizes:
            url = f"sqlite+aiosqlite:///{work}/{kind}-{size}.db"
            migrate = Process(["-m", "asyncpress.cli", "db", "upgrade"], work / "m.log", _env(url))
            assert migrate.wait(120) == 0, migrate.output()
            port = free_port()
            server = Process(
                [
                    "taskset",
                    "-c",
                    "0",
                    sys.executable,
                    "-m",
                    "asyncpress.cli",
                    "serve",
                    "--port",
                    str(port),
                ],
                work / f"{kind}-{size}.log",
                _env(url),
                raw=True,
            )
            try:
                wait_for_port(port)
                result = await scenario(kind, size, rounds, port, server.popen.pid)
                print(json.dumps(result), flush=True)
                results.append(result)
            finally:
                server.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,5000")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--protocols", default="ws,sse")
    args = parser.parse_args()
    os.sched_setaffinity(0, {1})
    sizes = [int(s) for s in args.sizes.split(",")]
    with TemporaryDirectory() as tmp:
        results = asyncio.run(run(sizes, args.rounds, Path(tmp), args.protocols.split(",")))
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"realtime-{stamp}.json"
    out.write_text(json.dumps({"rounds": args.rounds, "results": results}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
