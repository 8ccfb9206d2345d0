"""Notification benchmarks (PostgreSQL, real processes on 127.0.0.1).

1. Latency of ``POST /api/articles/{slug}/comments`` with the article
   author's comment notifications on (outbox row + kick + SMTP delivery in the
   same process) and off, alternating rounds in one run; the ratio is the result.
2. Drain throughput of ``asyncpress worker --once`` to a local SMTP sink, for
   one worker and for two at once.

    python -m bench.notifications [--requests N] [--concurrency C] [--rounds R] [--mails M]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import asyncpg
import httpx
from servers.postgres import PostgresServer, free_port
from servers.processes import Process, SmtpSink, wait_for_port

RESULTS = Path(__file__).parent / "results"
# The server under test gets CPU 0 to itself; the load generator (this
# process), PostgreSQL, the SMTP sink and workers share CPU 1.
PIN_APP = ["taskset", "-c", "0"]
PIN_OTHERS = ["taskset", "-c", "1"]
ALL_CPUS = ["taskset", "-c", "0,1"]
SECRET = "bench-secret-" + "x" * 40


def env(db_url: str, smtp_url: str, **extra: str) -> dict[str, str]:
    return {
        "DATABASE_URL": db_url,
        "ENVIRONMENT": "production",
        "JWT_SECRET": SECRET,
        "RATE_LIMITS": "false",  # load tests log in and register from one address
        "LOG_LEVEL": "WARNING",
        "ARGON2_TIME_COST": "1",
        "ARGON2_MEMORY_KIB": "64",
        "SMTP_URL": smtp_url,
        **extra,
    }


async def comment_round(
    base: str, token: str, slug: str, requests: int, concurrency: int
) -> tuple[list[float], list[float]]:
    """Client-observed latencies and the server's own (Server-Timing), in seconds."""
    latencies: list[float] = []
    server_side: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(requests):
        queue.put_nowait(n)
    headers = {"Authorization": f"Token {token}"}
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=30) as api:

        async def client() -> None:
            while not queue.empty():
                n = queue.get_nowait()
                started = time.perf_counter()
                response = await api.post(
                    f"/api/articles/{slug}/comments", json={"comment": {"body": f"c{n}"}}
                )
                latencies.append(time.perf_counter() - started)
                assert response.status_code == 200, response.text
                timing = response.headers["server-timing"].partition(";dur=")[2]
                server_side.append(float(timing) / 1000)

        async with asyncio.TaskGroup() as group:
            for _ in range(concurrency):
                group.create_task(client())
    return latencies, server_side


def summary(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "p50_ms": 1000 * statistics.median(ordered),
        "p99_ms": 1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
        "mean_ms": 1000 * statistics.fmean(ordered),
    }


async def setup_authors(base: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=f"{base}/api", timeout=30) as api:
        tokens = {}
        for name in ("loud", "quiet", "reader"):
            user = {"username": name, "email": f"{name}@example.com", "password": "password1"}
            tokens[name] = (await api.post("/users", json={"user": user})).json()["user"]["token"]
        await api.put(
            "/user/notifications",
            json={"notifications": {"commentOnMyArticle": False}},
            headers={"Authorization": f"Token {tokens['quiet']}"},
        )
        slugs = {}
        for name in ("loud", "quiet"):
            article = {"title": f"{name} article", "description": "d", "body": "b"}
            created = await api.post(
                "/articles",
                json={"article": article},
                headers={"Authorization": f"Token {tokens[name]}"},
            )
            slugs[name] = created.json()["article"]["slug"]
    return {"token": tokens["reader"], "slugs": slugs}


def bench_latency(
    server: PostgresServer, work: Path, args: argparse.Namespace, *, in_process: bool
) -> dict[str, Any]:
    """Comment latency, author notifications on vs off.

    ``in_process``: the API process delivers (embedded default); otherwise a
    separate ``asyncpress worker`` does (scaled mode), on the same machine.
    """
    name = "bench_latency_inproc" if in_process else "bench_latency_worker"
    server.psql(f"CREATE DATABASE {name}")
    url = server.url(name)
    sink = SmtpSink(free_port(), work / f"inbox-{name}", work).start(cpus="1")
    run = Process(
        ["-m", "asyncpress.cli", "db", "upgrade"], work / f"{name}-migrate.log", env(url, sink.url)
    )
    assert run.wait(120) == 0, run.output()
    port = free_port()
    app_env = env(url, sink.url, OUTBOX_IN_PROCESS="true" if in_process else "false")
    app = Process(
        [*PIN_APP, sys.executable, "-m", "asyncpress.cli", "serve", "--port", str(port)],
        work / f"{name}.log",
        app_env,
        raw=True,
    )
    worker = None
    if not in_process:
        worker = Process(
            [*PIN_OTHERS, sys.executable, "-m", "asyncpress.cli", "worker"],
            work / f"{name}-worker.log",
            env(url, sink.url, OUTBOX_SWEEP_S="0.1"),
            raw=True,
        )
    try:
        wait_for_port(port)
        base = f"http://127.0.0.1:{port}"
        data = asyncio.run(setup_authors(base))
        rounds: dict[str, list[float]] = {"off": [], "on": []}
        measured: dict[str, list[float]] = {"off": [], "on": []}
        asyncio.run(comment_round(base, data["token"], data["slugs"]["quiet"], 100, 4))  # warm-up
        for _ in range(args.rounds):
            for mode, author in (("off", "quiet"), ("on", "loud")):
                client_side, server_side = asyncio.run(
                    comment_round(
                        base, data["token"], data["slugs"][author], args.requests, args.concurrency
                    )
                )
                rounds[mode].extend(client_side)
                measured[mode].extend(server_side)
        delivered = len(sink.wait_for(args.rounds * args.requests, timeout=120))
    finally:
        app.stop()
        if worker is not None:
            worker.stop()
        sink.stop()
    off, on = summary(rounds["off"]), summary(rounds["on"])
    server_off, server_on = summary(measured["off"]), summary(measured["on"])
    return {
        "delivery": "in the API process" if in_process else "separate worker process",
        "requests_per_mode": len(rounds["on"]),
        "concurrency": args.concurrency,
        "off": off,
        "on": on,
        "ratio_p50": on["p50_ms"] / off["p50_ms"],
        "ratio_p99": on["p99_ms"] / off["p99_ms"],
        "server_off": server_off,
        "server_on": server_on,
        "server_ratio_p50": server_on["p50_ms"] / server_off["p50_ms"],
        "server_ratio_p99": server_on["p99_ms"] / server_off["p99_ms"],
        "mails_delivered": delivered,
    }


async def fill_outbox(dsn: str, count: int, prefix: str) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(
            "INSERT INTO outbox (idempotency_key, kind, to_email, payload, status, attempts,"
            " next_attempt_at, created_at) SELECT $1 || n, 'follow', 'r' || n || '@example.com',"
            " $2::json, 'pending', 0, now(), now() FROM generate_series(1, $3) AS n",
            prefix,
            json.dumps({"recipient": "reader", "actor": "writer"}),
            count,
        )
    finally:
        await connection.close()


def bench_drain(server: PostgresServer, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    server.psql("CREATE DATABASE bench_drain")
    url = server.url("bench_drain")
    # Drain runs unpinned: with two workers, each needs a core of its own.
    server.pin({0, 1})
    sink = SmtpSink(free_port(), work / "inbox-drain", work).start(cpus="0,1")
    base_env = env(url, sink.url)
    run = Process(["-m", "asyncpress.cli", "db", "upgrade"], work / "migrate2.log", base_env)
    assert run.wait(120) == 0, run.output()
    results: dict[str, Any] = {"mails": args.mails}
    try:
        for workers in (1, 2):
            asyncio.run(fill_outbox(server.dsn("bench_drain"), args.mails, f"w{workers}:"))
            started = time.perf_counter()
            procs = [
                Process(
                    [*ALL_CPUS, sys.executable, "-m", "asyncpress.cli", "worker", "--once"],
                    work / f"w{workers}-{i}.log",
                    base_env,
                    raw=True,
                )
                for i in range(workers)
            ]
            for proc in procs:
                assert proc.wait(600) == 0, proc.output()
            wall = time.perf_counter() - started
            # Each worker reports its own drain time (process start-up excluded);
            # two run side by side, so the longer one is the drain time.
            drained = max(
                float(re.search(r"in ([0-9.]+) s", proc.output()).group(1))  # type: ignore[union-attr]
                for proc in procs
            )
            results[f"{workers}_worker"] = {
                "drain_seconds": drained,
                "mails_per_s": args.mails / drained,
                "wall_seconds_with_startup": wall,
            }
        results["delivered"] = len(sink.messages())
    finally:
        sink.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=500, help="comments per mode per round")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--mails", type=int, default=5000, help="outbox rows per drain run")
    args = parser.parse_args()
    os.sched_setaffinity(0, {1})  # this process: the load generator, on CPU 1
    server = PostgresServer.start()
    server.pin({1})
    try:
        with TemporaryDirectory(prefix="asyncpress-bench-") as tmp:
            work = Path(tmp)
            report: dict[str, Any] = {
                "when": datetime.now(UTC).isoformat(timespec="seconds"),
                "comment_latency_in_process": bench_latency(server, work, args, in_process=True),
                "comment_latency_worker": bench_latency(server, work, args, in_process=False),
                "drain": bench_drain(server, work, args),
            }
    finally:
        server.stop()
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"notifications-{report['when'].replace(':', '')}.json"
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
