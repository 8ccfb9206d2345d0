"""The benchmark suite's harness, end to end in its dry mode (no figures judged).

Real PostgreSQL, real servers, real wrk: what ``make bench`` runs, with a
tiny data set and one-second runs, so that the harness cannot rot unseen.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench import report
from bench.suite import SCENARIOS

REPO = Path(__file__).parent.parent


def test_the_suite_runs_every_scenario_and_reports_it(tmp_path: Path) -> None:
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "bench.suite", "--dry", "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    [result_file] = tmp_path.glob("suite-*.json")
    result = json.loads(result_file.read_text())

    by_scenario = {
        name: [c for c in result["cases"] if c["scenario"] == name] for name in SCENARIOS
    }
    assert all(by_scenario.values()), {k: len(v) for k, v in by_scenario.items()}
    assert [c["name"] for c in result["cases"] if c["errors"]] == []
    names = {c["name"]: c for c in result["cases"]}
    for name in ("ceiling_small_dict", "ceiling_database", "list", "list_counting", "tags"):
        assert names[name]["rps"] > 0, name
    # The async case waits 100 ms per request: its median latency shows it.
    assert names["async_c50"]["p50_ms"] >= 100
    assert set(result["extras"]) == {"previews", "stats"}
    assert {"fastapi", "uvicorn", "asyncpg"} <= set(result["machine"]["packages"])

    plots = sorted(p.name for p in tmp_path.glob("*.png"))
    assert plots == ["concurrency.png", "latency.png", "throughput.png"]
    section = report.section(result, result_file)
    for heading in ("RealWorld endpoints", "Async vs sync", "Fan-out", "blocking call", "workers"):
        assert heading in section
    assert "| `GET /api/tags` |" in section
