"""Two versions of asyncpress side by side: every RealWorld endpoint, same data, same run.

Checks a refactor out of the way of performance: the working tree against a
git revision (``git worktree`` of it in a temporary folder), each served by
one uvicorn worker pinned to CPU 0 on the same seeded PostgreSQL database,
wrk pinned to CPU 1. The two servers take turns, run by run, in ABBA order
(base, this, this, base...): the second of a pair measured up to 15 %
apart from the first on the same code, so each goes first as often as
second, and drift on the machine lands on both; the medians and their
ratio (this / base) go to ``bench/results/versions-<timestamp>.json``.

    python -m bench.versions 52599c0            # 3 runs of 5 s per endpoint
    python -m bench.versions 52599c0 --runs 5 --seconds 8 --only list,login

Both versions must read the same schema (no migration between them).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from servers.postgres import PostgresServer, free_port
from servers.processes import Process, wait_for_port

from bench import loadgen
from bench.suite import (
    MODES,
    RESULTS,
    SECRET,
    endpoint_loads,
    read_fixtures,
    seed_data,
    settle,
)

REPO = Path(__file__).resolve().parents[1]


def _env(url: str, src: Path) -> dict[str, str]:
    return {
        "DATABASE_URL": url,
        "ENVIRONMENT": "production",
        "JWT_SECRET": SECRET,
        "RATE_LIMITS": "false",
        "LOG_LEVEL": "WARNING",
        "OUTBOX_IN_PROCESS": "false",
        # Ahead of the installed (editable) package: this version's code.
        "PYTHONPATH": str(src),
    }


@contextmanager
def _worktree(revision: str) -> Any:
    folder = Path(tempfile.mkdtemp(prefix="asyncpress-base-"))
    subprocess.run(  # noqa: S603
        ["git", "worktree", "add", "--detach", str(folder), revision],  # noqa: S607
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    try:
        yield folder
    finally:
        subprocess.run(  # noqa: S603
            ["git", "worktree", "remove", "--force", str(folder)],  # noqa: S607
            cwd=REPO,
            check=False,
            capture_output=True,
        )


def migrated_and_seeded(url: str, work: Path) -> dict[str, int]:
    """The database at ``url`` migrated by this tree and seeded with the quick data set."""
    migrate = Process(
        ["-m", "asyncpress.cli", "db", "upgrade"],
        work / "migrate.log",
        {"DATABASE_URL": url, "ENVIRONMENT": "development"},
    )
    assert migrate.wait(120) == 0, migrate.output()
    return asyncio.run(seed_data(url, MODES["quick"], 1))


@contextmanager
def _server(name: str, url: str, src: Path, work: Path, factory: str | None = None) -> Any:
    port = free_port()
    command = ["taskset", "-c", "0", sys.executable, "-m", "asyncpress.cli", "serve"]
    command += ["--port", str(port)] + (["--factory", factory] if factory else [])
    process = Process(command, work / f"{name}.log", _env(url, src), raw=True)
    try:
        wait_for_port(port, timeout=60)
        yield f"http://127.0.0.1:{port}", process.popen.pid
    finally:
        process.stop(30)


def compare(
    revision: str,
    runs: int,
    seconds: float,
    only: list[str] | None = None,
) -> dict[str, Any]:
    pg = PostgresServer.start()
    try:
        pg.pin({loadgen.LOADGEN_CPU})
        pg.psql("CREATE DATABASE bench")
        url = pg.url("bench")
        with (
            tempfile.TemporaryDirectory(prefix="asyncpress-versions-") as tmp,
            _worktree(revision) as base_tree,
        ):
            work = Path(tmp)
            counts = migrated_and_seeded(url, work)
            fixtures = asyncio.run(read_fixtures(url, 1))
            loads = endpoint_loads(fixtures)
            if only:
                loads = {name: loads[name] for name in only}
            sides = {"base": base_tree / "src", "this": REPO / "src"}
            results: dict[str, dict[str, list[dict[str, Any]]]] = {
                name: {side: [] for side in sides} for name in loads
            }
            with (
                _server("base", url, sides["base"], work) as base,
                _server("this", url, sides["this"], work) as this,
            ):
                servers = {"base": base, "this": this}
                for name, load in loads.items():
                    for side in sides:  # one warm-up each
                        loadgen.run(servers[side][0], load, 1, work, f"{name}-{side}-warm")
                        settle(servers[side][1])
                    for n in range(runs):
                        # ABBA: the second of a pair runs in what the first
                        # left (PostgreSQL's caches, the CPUs' state), so the
                        # order flips every round.
                        for side in list(sides)[:: 1 if n % 2 == 0 else -1]:
                            address, pid = servers[side]
                            run = loadgen.run(address, load, seconds, work, f"{name}-{side}")
                            settle(pid)
                            results[name][side].append(run)
                    _print(name, results[name])
        cases = {name: _summary(by_side) for name, by_side in results.items()}
        return {
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "base": revision,
            "this": _head(),
            "data": counts,
            "runs": runs,
            "seconds_per_run": seconds,
            "cases": cases,
        }
    finally:
        pg.stop()


def _git(*args: str) -> str:
    done = subprocess.run(  # noqa: S603
        ["git", *args],  # noqa: S607
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def _head() -> str:
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return _git("rev-parse", "--short", "HEAD") + ("+changes" if dirty else "")


def _summary(by_side: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for side, runs in by_side.items():
        out[side] = {
            "rps": statistics.median(r["rps"] for r in runs),
            "p50_ms": statistics.median(r["p50_ms"] for r in runs),
            "p99_ms": statistics.median(r["p99_ms"] for r in runs),
            "errors": sum(r.get("error_count", 0) for r in runs),
        }
    out["ratio"] = round(out["this"]["rps"] / out["base"]["rps"], 3) if out["base"]["rps"] else 0
    return out


def _print(name: str, by_side: dict[str, list[dict[str, Any]]]) -> None:
    summary = _summary(by_side)
    print(
        f"{name:<16} base {summary['base']['rps']:>8.1f} req/s"
        f"  this {summary['this']['rps']:>8.1f} req/s  ratio {summary['ratio']:.3f}",
        flush=True,
    )


def table(result: dict[str, Any]) -> str:
    lines = [
        f"| endpoint | {result['base']} req/s | {result['this']} req/s | ratio |",
        "|---|---:|---:|---:|",
    ]
    for name, case in result["cases"].items():
        lines.append(
            f"| {name} | {case['base']['rps']:.0f} | {case['this']['rps']:.0f}"
            f" | {case['ratio']:.3f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("revision", help="the git revision to compare the working tree with")
    parser.add_argument("--runs", type=int, default=4, help="per side; even, for ABBA")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--only", help="comma-separated endpoint names [all]")
    args = parser.parse_args(argv)
    only = args.only.split(",") if args.only else None
    result = compare(args.revision, args.runs, args.seconds, only)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = result["when"].replace(":", "").replace("+0000", "Z")
    out = RESULTS / f"versions-{stamp}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))
    print(f"wrote {out}")
    errors = [n for n, c in result["cases"].items() if c["base"]["errors"] or c["this"]["errors"]]
    if errors:
        print(f"cases with errors: {', '.join(errors)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
