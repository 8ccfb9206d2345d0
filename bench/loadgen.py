"""Drive a server with wrk (``bench/wrk/request.lua``) and read back its figures."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).parent / "wrk" / "request.lua"
LOADGEN_CPU = 1  # the server runs on CPU 0


@dataclass(frozen=True)
class Target:
    """One request line: a path, the token to send (or none) and a JSON body (or none)."""

    path: str
    token: str | None = None
    body: str | None = None

    def line(self) -> str:
        return "\t".join((self.path, self.token or "-", self.body or "-"))


@dataclass
class Grid:
    """Every (token, item) pair once, for writes that must each change a row.

    ``path`` holds ``{item}``. Each wrk thread walks its own share of the
    pairs in order, each run from where the one before stopped (``starts``),
    so that a favorite, say, is of a pair not favorited yet. An undo (the
    unfavorite, made by ``again``) walks the pairs its write walked in the
    write's latest run, from where that run began (``begun``): measured in
    rounds, each round's undo takes back what that round's write wrote.
    """

    path: str
    tokens: list[str]
    items: list[str]
    starts: list[int] | None = None
    begun: list[int] | None = None  # the starts of the latest run
    undoes: Grid | None = None

    def again(self) -> Grid:
        return Grid(self.path, self.tokens, self.items, undoes=self)

    def starting(self, threads: int) -> list[int]:
        """Where each thread starts its next run."""
        if self.undoes is not None and self.undoes.begun is not None:
            self.starts = list(self.undoes.begun)
        if self.starts is None:
            share = self.size // threads
            self.starts = [k * share for k in range(threads)]
        return self.starts

    def walked(self, positions: list[int]) -> int:
        """Record where a run stopped; returns the pairs it sent."""
        assert self.starts is not None
        sent = sum(p - s for p, s in zip(positions, self.starts, strict=True))
        self.begun, self.starts = self.starts, positions
        return sent

    @property
    def size(self) -> int:
        return len(self.tokens) * len(self.items)


@dataclass(frozen=True)
class Load:
    method: str
    targets: list[Target]
    concurrency: int
    unique_bodies: bool = False
    # Slow requests (argon2 logins: about 10/s with a queue of 64) need runs
    # long enough for many to finish.
    min_seconds: float = 0
    grid: Grid | None = None


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise RuntimeError("wrk not found: install the Debian package 'wrk'")
    return found


def wrk_version() -> str:
    done = subprocess.run(  # noqa: S603
        [wrk_binary(), "--version"], capture_output=True, text=True, check=False
    )
    return (done.stdout or done.stderr).splitlines()[0].strip()


def start(base: str, load: Load, seconds: float, work: Path, name: str) -> subprocess.Popen[str]:
    """Start one wrk run in the background; ``finish`` reads its figures."""
    threads = 1 if load.concurrency < 4 else 2
    env = {**os.environ, "BENCH_METHOD": load.method}
    if load.grid is None:
        targets = work / f"{name}.targets"
        targets.write_text("\n".join(t.line() for t in load.targets) + "\n")
        env["BENCH_TARGETS"] = str(targets)
    else:
        grid = load.grid
        tokens, items = work / f"{name}.tokens", work / f"{name}.items"
        tokens.write_text("\n".join(grid.tokens) + "\n")
        items.write_text("\n".join(grid.items) + "\n")
        env["BENCH_GRID"] = "\t".join((grid.path, str(tokens), str(items)))
        env["BENCH_THREADS"] = str(threads)
        env["BENCH_STARTS"] = ",".join(str(n) for n in grid.starting(threads))
    if load.unique_bodies:
        env["BENCH_UNIQUE"] = "1"
    command = [
        "taskset",
        "-c",
        str(LOADGEN_CPU),
        wrk_binary(),
        f"-t{threads}",
        f"-c{load.concurrency}",
        f"-d{max(1, round(max(seconds, load.min_seconds)))}s",
        "--timeout",
        "30s",
        "-s",
        str(SCRIPT),
        base,
    ]
    return subprocess.Popen(  # noqa: S603
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def finish(process: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    stdout, stderr = process.communicate(timeout=timeout)
    found = [line for line in stdout.splitlines() if line.startswith("BENCH ")]
    if process.returncode != 0 or not found:
        raise RuntimeError(f"wrk failed ({process.returncode}): {stdout}\n{stderr}")
    raw = json.loads(found[-1][len("BENCH ") :])
    seconds_run = raw["duration_us"] / 1e6
    latency = raw["latency_us"]
    return {
        "requests": raw["requests"],
        "positions": raw["positions"],
        "sent": raw["sent"],
        "rps": round(raw["requests"] / seconds_run, 1),
        "p50_ms": round(latency["p50"] / 1000, 2),
        "p90_ms": round(latency["p90"] / 1000, 2),
        "p99_ms": round(latency["p99"] / 1000, 2),
        "max_ms": round(latency["max"] / 1000, 2),
        "errors": raw["errors"],
        "error_count": sum(raw["errors"].values()),
    }


def run(base: str, load: Load, seconds: float, work: Path, name: str) -> dict[str, Any]:
    """One wrk run; returns requests/s, latency percentiles (ms) and error counts."""
    done = finish(start(base, load, seconds, work, name), max(seconds, load.min_seconds) + 120)
    if load.grid is not None:
        grid = load.grid
        share = grid.size // len(done["positions"])
        assert done["sent"] == grid.walked(done["positions"])
        if any(p - k * share >= share for k, p in enumerate(done["positions"])):
            # Past its share a thread repeats pairs already written (on the
            # small data sets of --dry and --smoke): the case's rows written
            # per request shows it.
            print(f"    {name}: a thread went past its {share} pairs", flush=True)
    return done
