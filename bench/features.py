"""Benchmarks for issue-5 features (real processes on 127.0.0.1).

1. Preview fan-out: an article with k = 1, 5, 10, 20 links to a local
   upstream that answers after 100 ms; latency of its previews (cold).
2. Stats: the six parts concurrently (TaskGroup, own sessions) vs one after
   another, on PostgreSQL with 100,000 seeded articles.
3. Export: 100,000 articles as NDJSON: rows/s and the server's RSS growth.
4. Import: 10,000 articles in one request, on SQLite and on PostgreSQL.

    python -m bench.features
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import httpx
from servers.postgres import PostgresServer, free_port
from servers.processes import Process, wait_for_port

from asyncpress.cli.seed import seed
from asyncpress.core.config import Settings
from asyncpress.core.db.engine import create_engine, create_sessionmaker
from asyncpress.stats import service as stats

RESULTS = Path(__file__).parent / "results"
SECRET = "bench-secret-" + "x" * 40


def env(url: str, **extra: str) -> dict[str, str]:
    return {
        "DATABASE_URL": url,
        "ENVIRONMENT": "production",
        "JWT_SECRET": SECRET,
        "RATE_LIMITS": "false",  # load tests log in and register from one address
        "LOG_LEVEL": "WARNING",
        "ARGON2_TIME_COST": "1",
        "ARGON2_MEMORY_KIB": "64",
        "OUTBOX_IN_PROCESS": "false",
        **extra,
    }


def serve(url: str, work: Path, name: str, **extra: str) -> tuple[Process, str]:
    migrate = Process(["-m", "asyncpress.cli", "db", "upgrade"], work / f"{name}-m.log", env(url))
    assert migrate.wait(120) == 0, migrate.output()
    port = free_port()
    app = Process(
        ["-m", "asyncpress.cli", "serve", "--port", str(port)],
        work / f"{name}.log",
        env(url, **extra),
    )
    wait_for_port(port)
    return app, f"http://127.0.0.1:{port}"


async def account(api: httpx.AsyncClient, name: str) -> dict[str, str]:
    user = {"username": name, "email": f"{name}@example.com", "password": "password1"}
    token = (await api.post("/api/users", json={"user": user})).json()["user"]["token"]
    return {"Authorization": f"Token {token}"}


async def fan_out(base: str, upstream: str, rounds: int = 5) -> dict[str, Any]:
    out: dict[str, Any] = {}
    async with httpx.AsyncClient(base_url=base, timeout=30) as api:
        auth = await account(api, "fan")
        for k in (1, 5, 10, 20):
            times = []
            for r in range(rounds):
                links = " ".join(f"{upstream}/page?ms=100&t=k{k}r{r}n{n}" for n in range(k))
                article = {"title": f"fan {k} {r}", "description": "d", "body": links}
                # PUT-free: a new article per round, read before its background warm-up
                # can finish, by using links the server has never seen.
                created = await api.post("/api/articles", json={"article": article}, headers=auth)
                slug = created.json()["article"]["slug"]
                started = time.perf_counter()
                response = await api.get(f"/api/articles/{slug}/previews")
                times.append(time.perf_counter() - started)
                assert response.status_code == 200
            out[f"k={k}"] = {"median_ms": 1000 * statistics.median(times), "rounds": rounds}
    out["ratio_k10_to_k1"] = out["k=10"]["median_ms"] / out["k=1"]["median_ms"]
    return out


async def stats_compare(url: str, repeats: int = 15) -> dict[str, Any]:
    settings = Settings(environment="development", database_url=url)
    engine = create_engine(settings)
    sessionmaker = create_sessionmaker(engine)
    try:
        await stats.gather_concurrently(sessionmaker)  # warm the pool and the caches
        concurrent, sequential = [], []
        for _ in range(repeats):
            started = time.perf_counter()
            await stats.gather_concurrently(sessionmaker)
            concurrent.append(time.perf_counter() - started)
            started = time.perf_counter()
            await stats.gather_sequentially(sessionmaker)
            sequential.append(time.perf_counter() - started)
    finally:
        await engine.dispose()
    c, s = statistics.median(concurrent), statistics.median(sequential)
    return {"concurrent_ms": 1000 * c, "sequential_ms": 1000 * s, "ratio": c / s}


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def export_run(base: str, pid: int) -> dict[str, Any]:
    idle = rss_kib(pid)
    peak = idle
    rows = 0
    started = time.perf_counter()
    async with (
        httpx.AsyncClient(base_url=base, timeout=600) as api,
        api.stream("GET", "/api/articles/export") as response,
    ):
        async for line in response.aiter_lines():
            if line:
                rows += 1
            if rows % 2000 == 0:
                peak = max(peak, rss_kib(pid))
    elapsed = time.perf_counter() - started
    peak = max(peak, rss_kib(pid))
    return {
        "rows": rows,
        "seconds": elapsed,
        "rows_per_s": rows / elapsed,
        "idle_rss_mib": idle / 1024,
        "peak_rss_mib": peak / 1024,
        "rss_growth_mib": (peak - idle) / 1024,
    }


async def import_run(base: str) -> dict[str, Any]:
    items = [
        {"title": f"Imported {n}", "description": "d", "body": f"body {n}", "tagList": ["a", "b"]}
        for n in range(10_000)
    ]
    async with httpx.AsyncClient(base_url=base, timeout=300) as api:
        auth = await account(api, "importer")
        started = time.perf_counter()
        response = await api.post("/api/articles/import", json={"articles": items}, headers=auth)
        elapsed = time.perf_counter() - started
    assert response.status_code == 201, response.text
    return {"articles": 10_000, "seconds": elapsed, "articles_per_s": 10_000 / elapsed}


async def seed_articles(url: str, articles: int) -> None:
    settings = Settings(environment="development", database_url=url)
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session:
            await seed(
                session,
                password_hash="x",
                users=200,
                articles=articles,
                comments=0,
                favorites=0,
                follows=0,
                seed_value=1,
            )
    finally:
        await engine.dispose()


def main() -> None:
    report: dict[str, Any] = {"when": datetime.now(UTC).isoformat(timespec="seconds")}
    server = PostgresServer.start()
    with TemporaryDirectory(prefix="asyncpress-bench-") as tmp:
        work = Path(tmp)
        upstream_port = free_port()
        upstream = Process(["-m", "servers.upstream", str(upstream_port)], work / "up.log")
        try:
            wait_for_port(upstream_port)
            server.psql("CREATE DATABASE bench_features")
            url = server.url("bench_features")
            app, base = serve(url, work, "pg", PREVIEW_ALLOWED_HOSTS="localhost")
            try:
                report["fan_out"] = asyncio.run(fan_out(base, f"http://localhost:{upstream_port}"))
                report["import_postgresql"] = asyncio.run(import_run(base))
                asyncio.run(seed_articles(url, 100_000))
                report["stats_postgresql_100k"] = asyncio.run(stats_compare(url))
            finally:
                app.stop()
            # A fresh server for the export, so its idle RSS is not the high-water
            # mark of the import it served before.
            app, base = serve(url, work, "pg-export")
            try:
                report["export_100k"] = asyncio.run(export_run(base, app.popen.pid))
            finally:
                app.stop()
            sqlite_url = f"sqlite+aiosqlite:///{work / 'bench.db'}"
            app, base = serve(sqlite_url, work, "sqlite")
            try:
                report["import_sqlite"] = asyncio.run(import_run(base))
            finally:
                app.stop()
        finally:
            upstream.kill()
            server.stop()
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"features-{report['when'].replace(':', '')}.json"
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
