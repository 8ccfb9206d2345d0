"""What one request costs: CPU of the server and of PostgreSQL per request, per endpoint.

Throughput alone does not say which side of the connection a request spends
its time on. This serves the working tree the way ``bench.versions`` does
(one uvicorn worker on CPU 0; PostgreSQL and wrk on CPU 1; the suite's
quick data set), drives each endpoint with wrk, and reads the CPU time both
sides used from ``/proc`` around each run: the server's process, and every
process of the PostgreSQL cluster (backends that ended are counted through
the postmaster's reaped children). With ``--statements`` it also loads
``pg_stat_statements`` and prints, per endpoint, the statements that took
the most time inside PostgreSQL, lock waits included; a statement whose
time is far above its CPU cost is waiting on a row someone else holds.

    python -m bench.cost create_article,favorite
    python -m bench.cost favorite --runs 3 --seconds 8 --statements

Compare two versions by running it on each (``git stash`` and back, taking
turns); unlike ``bench.versions`` it also works across a migration, since
each run migrates its own database. Results go to
``bench/results/cost-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from servers.postgres import PostgresServer

from bench import loadgen
from bench.suite import RESULTS, endpoint_loads, read_fixtures, settle
from bench.versions import REPO, _server, migrated_and_seeded

TICK_S = 1 / os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def process_cpu_s(pid: int) -> float:
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) * TICK_S


def cluster_cpu_s(pg: PostgresServer) -> float:
    """CPU seconds of the postmaster, its live children and those it has reaped."""
    postmaster = int((pg.data / "postmaster.pid").read_text().split()[0])
    fields = _stat(postmaster)
    total = sum(int(fields[i]) for i in (11, 12, 13, 14)) * TICK_S
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            child = _stat(int(entry.name))
        except OSError:
            continue  # ended meanwhile: the postmaster's reaped share has it
        if int(child[1]) == postmaster:
            total += (int(child[11]) + int(child[12])) * TICK_S
    return total


STATEMENTS = """
SELECT calls, total_exec_time / calls AS exec_ms, rows,
       left(regexp_replace(query, '\\s+', ' ', 'g'), 160) AS query
FROM pg_stat_statements
WHERE calls > 0 AND query NOT LIKE '%pg_stat_statements%'
ORDER BY total_exec_time DESC LIMIT $1
"""


async def _sql(dsn: str, query: str, *args: Any) -> list[dict[str, Any]]:
    connection = await asyncpg.connect(dsn)
    try:
        return [dict(row) for row in await connection.fetch(query, *args)]
    finally:
        await connection.close()


def measure(
    cases: list[str], runs: int, seconds: float, statements: int, factory: str | None = None
) -> dict[str, Any]:
    pg = PostgresServer.start()
    try:
        if statements:
            pg.psql("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
            pg.restart()
        pg.pin({loadgen.LOADGEN_CPU})
        pg.psql("CREATE DATABASE bench")
        url = pg.url("bench")
        dsn = url.replace("postgresql+asyncpg", "postgresql").replace("ssl=", "sslmode=")
        with tempfile.TemporaryDirectory(prefix="asyncpress-cost-") as tmp:
            work = Path(tmp)
            counts = migrated_and_seeded(url, work)
            loads = endpoint_loads(asyncio.run(read_fixtures(url, 1)))
            unknown = sorted(set(cases) - loads.keys())
            if unknown:
                raise SystemExit(f"unknown case(s) {unknown}; choose from {sorted(loads)}")
            if statements:
                asyncio.run(_sql(dsn, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"))
            results: dict[str, Any] = {}
            server = _server("this", url, REPO / "src", work, factory)
            with server as (address, pid):
                for name in cases:
                    loadgen.run(address, loads[name], 1, work, f"{name}-warm")
                    settle(pid)
                    if statements:
                        asyncio.run(_sql(dsn, "SELECT pg_stat_statements_reset()"))
                    samples = []
                    for n in range(runs):
                        server0, cluster0 = process_cpu_s(pid), cluster_cpu_s(pg)
                        run = loadgen.run(address, loads[name], seconds, work, f"{name}-{n}")
                        server1, cluster1 = process_cpu_s(pid), cluster_cpu_s(pg)
                        done = run["rps"] * seconds
                        samples.append(
                            {
                                "rps": run["rps"],
                                "server_us": 1e6 * (server1 - server0) / done,
                                "postgresql_us": 1e6 * (cluster1 - cluster0) / done,
                                "server_busy": (server1 - server0) / seconds,
                                "postgresql_busy": (cluster1 - cluster0) / seconds,
                            }
                        )
                        settle(pid)
                    case = {k: statistics.median(s[k] for s in samples) for k in samples[0]}
                    case["runs"] = samples
                    if statements:
                        rows = asyncio.run(_sql(dsn, STATEMENTS, statements))
                        case["statements"] = rows
                    results[name] = case
                    _print(name, case)
        return {
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "data": counts,
            "runs": runs,
            "seconds_per_run": seconds,
            "cases": results,
        }
    finally:
        pg.stop()


def _print(name: str, case: dict[str, Any]) -> None:
    print(
        f"{name:<16} {case['rps']:8.1f} req/s   server {case['server_us']:7.0f} µs/request"
        f" ({case['server_busy']:4.0%} of a core)   PostgreSQL {case['postgresql_us']:7.0f}"
        f" µs/request ({case['postgresql_busy']:4.0%})",
        flush=True,
    )
    for row in case.get("statements", []):
        print(f"    {row['calls']:>7} calls {row['exec_ms']:9.3f} ms  {row['query']}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", help="comma-separated endpoint names (bench.suite's)")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument(
        "--statements", type=int, default=0, metavar="N", help="the N costliest statements"
    )
    parser.add_argument(
        "--factory",
        help="serve this app factory instead (bench.apps:ceiling: the ceilings, whose "
        "one-row read and write answer the profile and favorite cases)",
    )
    args = parser.parse_args(argv)
    result = measure(args.cases.split(","), args.runs, args.seconds, args.statements, args.factory)
    result["factory"] = args.factory
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = result["when"].replace(":", "").replace("+0000", "Z")
    out = RESULTS / f"cost-{stamp}.json"
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
