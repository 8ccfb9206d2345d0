"""Other requests' latency while hostile renders run: worker processes against threads.

Two ``asyncpress serve`` processes on one SQLite file, side by side in one
run: ``RENDER_PROCESSES=1`` (the default) and ``RENDER_PROCESSES=0`` (renders
in threads, as before). For each: a probe sends ``GET /api/tags`` one after
another for ``--seconds`` while idle, then for as long again while
``--renderers`` clients each loop ``POST /api/render`` with 100 KB of ``[``
(about 1.3 s of CPU per render in this parser). Reported: the probe's p50
and p99 in both phases and their ratio (the bound: p99 at most 3 times idle).

    python -m bench.render [--seconds 5] [--renderers 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import httpx

from bench.features import RESULTS, serve

HOSTILE = {"markdown": "[" * 100_000}


def _quantiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "n": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 2),
    }


async def _probe(base: str, seconds: float) -> list[float]:
    samples: list[float] = []
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        ends = time.monotonic() + seconds
        while time.monotonic() < ends:
            started = time.perf_counter()
            response = await http.get("/api/tags")
            samples.append(time.perf_counter() - started)
            assert response.status_code == 200, response.text
    return samples


async def _render_loop(base: str, until: float, statuses: list[int]) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        while time.monotonic() < until:
            statuses.append((await http.post("/api/render", json=HOSTILE)).status_code)


async def measure(base: str, seconds: float, renderers: int) -> dict[str, Any]:
    await _probe(base, 1.0)  # warm-up
    idle = await _probe(base, seconds)
    statuses: list[int] = []
    until = time.monotonic() + seconds + 1.0
    loops = [asyncio.create_task(_render_loop(base, until, statuses)) for _ in range(renderers)]
    await asyncio.sleep(0.5)  # the renders are under way
    storm = await _probe(base, seconds)
    await asyncio.gather(*loops)
    idle_q, storm_q = _quantiles(idle), _quantiles(storm)
    return {
        "idle": idle_q,
        "during_renders": storm_q,
        "p99_ratio": round(storm_q["p99_ms"] / idle_q["p99_ms"], 2),
        "p50_ratio": round(storm_q["p50_ms"] / idle_q["p50_ms"], 2),
        "render_statuses": {str(s): statuses.count(s) for s in sorted(set(statuses))},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--renderers", type=int, default=8)
    args = parser.parse_args()
    results: dict[str, Any] = {"seconds": args.seconds, "renderers": args.renderers}
    with TemporaryDirectory(prefix="asyncpress-bench-render-") as tmp:
        work = Path(tmp)
        url = f"sqlite+aiosqlite:///{work / 'render.db'}"
        for name, processes in (("processes", "1"), ("threads", "0")):
            app, base = serve(url, work, name, RENDER_PROCESSES=processes)
            try:
                results[name] = asyncio.run(measure(base, args.seconds, args.renderers))
            finally:
                app.stop(timeout=15)
            print(name, json.dumps(results[name]), flush=True)
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"render-{stamp}.json"
    out.write_text(json.dumps(results, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
