"""The benchmark suite's harness, end to end, and its report on every scenario.

Real PostgreSQL, real servers, real wrk: ``--smoke`` runs what ``make
bench`` runs (seeding, servers, wrk, the database ceiling, results, plots)
on a tiny data set with the cheapest cases of one scenario, so the harness
cannot rot unseen. Every scenario's cases are run by ``make bench-dry``,
which CI runs after the tests; the report and plots of every scenario are
checked here on the last full run's results (docs/bench/).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench import report
from bench.suite import SCENARIOS, SMOKE_ENDPOINTS

REPO = Path(__file__).parent.parent


def test_a_smoke_run_seeds_serves_measures_and_reports(tmp_path: Path) -> None:
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "bench.suite", "--smoke", "endpoints", "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    [result_file] = tmp_path.glob("suite-*.json")
    result = json.loads(result_file.read_text())
    assert result["mode"] == "smoke"
    assert {c["scenario"] for c in result["cases"]} == {"endpoints"}
    assert [c["name"] for c in result["cases"] if c["errors"]] == []
    names = {c["name"]: c for c in result["cases"]}
    ceilings = {"ceiling_small_dict", "ceiling_database", "ceiling_one_row_read", "ceiling_write"}
    assert set(names) == {*ceilings, *SMOKE_ENDPOINTS}
    for name, case in names.items():
        assert case["rps"] > 0, name
        assert case["p50_ms"] > 0, name
    # The writes walk pairs not written yet: each favorite adds a row (but for
    # the few pairs the seed favorited). The unfavorites that follow take away
    # the rows the favorites added, as many as there are: when they outrun
    # the favorites (their relative speed varies), the rest change nothing.
    for name in ("ceiling_write", "favorite"):
        assert names[name]["changed_per_request"] > 0.9, (name, names[name])
    unfavorite = names["unfavorite"]
    removable = min(names["favorite"]["rows_changed"], unfavorite["requests_sent"])
    assert unfavorite["rows_changed"] >= 0.9 * removable, (unfavorite, removable)
    assert {"fastapi", "uvicorn", "asyncpg"} <= set(result["machine"]["packages"])
    # The concurrency plot needs the sync/async scenario, which a smoke run leaves out.
    plots = sorted(p.name for p in tmp_path.glob("*.png"))
    assert plots == ["latency.png", "throughput.png"]
    assert "| `GET /api/tags` |" in report.section(result, result_file)


def _last_full_run() -> tuple[dict[str, object], Path]:
    runs = sorted((REPO / "docs" / "bench").glob("suite-*.json"))
    assert runs, "docs/bench/ keeps the results of the last full run"
    return json.loads(runs[-1].read_text()), runs[-1]


def test_the_report_covers_every_scenario_of_a_full_run(tmp_path: Path) -> None:
    result, source = _last_full_run()
    cases = result["cases"]
    assert isinstance(cases, list)
    assert {c["scenario"] for c in cases} == set(SCENARIOS)
    section = report.section(result, source)
    for heading in ("RealWorld endpoints", "Async vs sync", "Fan-out", "blocking call", "workers"):
        assert heading in section
    assert "| `GET /api/tags` |" in section
    plots = sorted(p.name for p in report.plots(result, tmp_path))
    assert plots == ["concurrency.png", "latency.png", "throughput.png"]
