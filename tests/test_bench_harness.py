"""The benchmark suite's harness, end to end, and its report on every scenario.

Real PostgreSQL, real servers, real wrk: ``--smoke`` runs what ``make
bench`` runs (seeding, servers, wrk, the database ceiling, results, plots)
on a tiny data set with the cheapest cases of one scenario, so the harness
cannot rot unseen. Every scenario's cases are run by ``make bench-dry``,
which CI runs after the tests; the report and plots of every scenario are
checked here on the last full run's results (docs/bench/).

A case and its ceiling are compared as a ratio; measured minutes apart on
this machine's shared cores, they drift apart for reasons of their own. The
suite therefore runs every case once per round (``Bench.rounds``), and each
round's undo (an unfavorite) takes back the pairs that round's write wrote.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, cast

import pytest
from bench import report
from bench.loadgen import Grid
from bench.report import ratio
from bench.suite import (
    MODES,
    ROUND,
    SCENARIOS,
    SMOKE_ENDPOINTS,
    Bench,
    Turn,
    endpoint_loads,
    in_round_order,
)

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
    # Each round ends by taking back the new articles and comments (and their
    # tags' uses): the next round reads the data set as seeded.
    assert names["create_article"]["changed_per_request"] > 0.9
    assert names["comment"]["changed_per_request"] > 0.9
    left = result["extras"]["rows_after_rounds"]
    seeded = result["data"]
    assert (left["articles"], left["comments"]) == (seeded["articles"], seeded["comments"])
    assert left["tag_uses"] == left["article_tags"] == seeded["article_tags"]
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


# -- rounds and grids, without servers -------------------------------------


def _bench(tmp_path: Path, mode: str = "full") -> Bench:
    # Only the mode and the record are used: no database, no server.
    return Bench(MODES[mode], tmp_path, cast(Any, None), "", cast(Any, None), set())


def test_every_round_takes_every_case_in_turn_after_warming_each(tmp_path: Path) -> None:
    bench = _bench(tmp_path)
    calls: list[str] = []
    speeds = {"ceiling": iter([100.0, 300.0, 200.0]), "case": iter([50.0, 10.0, 30.0])}

    def turn(name: str) -> Turn:
        def once() -> dict[str, Any]:
            calls.append(name)
            return {"rps": next(speeds[name]), "p50_ms": 1.0, "p99_ms": 2.0}

        return Turn(name, once, lambda: calls.append(f"warm {name}"), None, 64)

    ceiling, case = bench.rounds("endpoints", [turn("ceiling"), turn("case")])
    assert calls == ["warm ceiling", "warm case", *["ceiling", "case"] * MODES["full"].runs]
    assert [r["round"] for r in case["runs"]] == [0, 1, 2]
    assert (ceiling["rps"], case["rps"]) == (200.0, 30.0)  # each the median of its rounds


def test_runs_without_warm_up_in_modes_that_have_none(tmp_path: Path) -> None:
    bench = _bench(tmp_path, "quick")
    calls: list[str] = []
    done = {"rps": 1.0, "p50_ms": 1.0, "p99_ms": 1.0}

    def once() -> dict[str, Any]:
        calls.append("run")
        return done

    only = Turn("only", once, lambda: calls.append("warm"), None, 1)
    bench.rounds("endpoints", [only])
    assert calls == ["run"]


def test_a_write_walks_on_and_its_undo_walks_what_the_write_just_wrote() -> None:
    favorites = Grid("/api/articles/{item}/favorite", ["a", "b"], [str(n) for n in range(50)])
    unfavorites = favorites.again()
    assert favorites.starting(2) == [0, 50]  # each thread its half of the 100 pairs

    assert favorites.walked([10, 62]) == 22
    assert unfavorites.starting(2) == [0, 50]
    assert unfavorites.walked([14, 60]) == 24  # past the write: those pairs change nothing

    assert favorites.starting(2) == [10, 62]  # the next round writes pairs not written yet
    assert favorites.walked([20, 70]) == 18
    assert unfavorites.starting(2) == [10, 62]  # and its undo takes back those


def test_a_ratio_is_the_median_of_the_rounds_own_ratios() -> None:
    def case(*speeds: float) -> dict[str, Any]:
        runs = [{"rps": v, "round": n} for n, v in enumerate(speeds)]
        return {"rps": sorted(speeds)[len(speeds) // 2], "runs": runs}

    # The ceiling's slow minute (round 1) came with the case's slow minute:
    # the rounds' ratios are 0.5, 0.75 and 0.6; the medians' ratio, 200/300, is not one of them.
    ceiling, read = case(400.0, 200.0, 300.0), case(200.0, 150.0, 180.0)
    assert ratio(read, ceiling) == 0.6
    # Results from before the rounds: the ratio of the medians.
    older = {"rps": 100.0, "runs": [{"rps": 100.0}]}
    assert ratio(older, {"rps": 400.0, "runs": [{"rps": 400.0}]}) == 0.25


def test_a_round_places_every_endpoint_and_each_undo_after_its_write() -> None:
    loads = endpoint_loads(cast(Any, _NoFixtures()))
    assert set(loads) <= set(ROUND)
    for write, undo in (("favorite", "unfavorite"), ("follow", "unfollow")):
        assert ROUND.index(write) < ROUND.index(undo)
    done = {"rps": 1.0, "p50_ms": 1.0, "p99_ms": 1.0}
    stray = Turn("not_in_round", lambda: done, lambda: None, None, 1)
    with pytest.raises(ValueError, match="not_in_round"):
        in_round_order({"list": stray, "not_in_round": stray})


class _NoFixtures:
    """Fixtures enough for endpoint_loads to name its cases."""

    def __getattr__(self, _name: str) -> list[str]:
        return ["x"]
