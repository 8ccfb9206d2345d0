"""Turn a suite result into the table in docs/benchmarks.md and PNG plots.

python -m bench.report bench/results/suite-<timestamp>.json   # regenerate both
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

TIMES = "\u00d7"  # the multiplication sign, for "0.70 x ceiling" in tables

ROOT = Path(__file__).parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
PLOTS = ROOT / "docs" / "bench"
BEGIN, END = "<!-- suite:begin -->", "<!-- suite:end -->"

READ, WRITE, SMALL, DB = (
    "ceiling_one_row_read",
    "ceiling_write",
    "ceiling_small_dict",
    "ceiling_database",
)
ENDPOINTS = {
    # case: (what is requested, ceiling case, target: at least this share of it)
    "list": ("GET /api/articles?limit=20", DB, 0.7),
    "list_counting": ("GET /api/articles?limit=20, no count cache", DB, None),
    "list_by_tag": ("GET /api/articles?limit=20&tag=…", DB, None),
    "feed": ("GET /api/articles/feed?limit=20", DB, 0.7),
    "article": ("GET /api/articles/{slug}", READ, 0.7),
    "comments": ("GET /api/articles/{slug}/comments", READ, 0.5),
    "tags": ("GET /api/tags", READ, 0.7),
    "profile": ("GET /api/profiles/{username}", READ, 0.7),
    "login": ("POST /api/users/login (C=16)", SMALL, None),
    "create_article": ("POST /api/articles", WRITE, 0.2),
    "favorite": ("POST /api/articles/{slug}/favorite", WRITE, 0.35),
    "unfavorite": ("DELETE /api/articles/{slug}/favorite", WRITE, 0.35),
    "follow": ("POST /api/profiles/{username}/follow", WRITE, 0.35),
    "unfollow": ("DELETE /api/profiles/{username}/follow", WRITE, 0.35),
    "comment": ("POST /api/articles/{slug}/comments", WRITE, 0.35),
}
CEILINGS = {
    SMALL: "framework ceiling: bare FastAPI, small dict",
    "ceiling_20_articles": "framework ceiling: bare FastAPI, 20 articles via response model",
    DB: "database ceiling: raw asyncpg, one statement per page",
    READ: "one-row read ceiling: FastAPI + asyncpg fetchrow, token check, response model",
    WRITE: "write ceiling: FastAPI + asyncpg, favorite and event rows in one transaction",
}


def _cases(result: dict[str, Any], scenario: str) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in result["cases"] if c["scenario"] == scenario}


def _n(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 else f"{value:.1f}"


def _ms(value: float) -> str:
    return f"{value:,.1f}" if value >= 10 else f"{value:.2f}"


def _figures(case: dict[str, Any]) -> str:
    """The "req/s | p50 ms | p99 ms" cells of a table row."""
    return f"{_n(case['rps'])} | {_ms(case['p50_ms'])} | {_ms(case['p99_ms'])}"


def _wrote(case: dict[str, Any]) -> str:
    """Rows a write case changed per request (below 1: some repeated a done write)."""
    share = case.get("changed_per_request")
    return "" if share is None else f"{share:.2f}"


def ratio(case: dict[str, Any], ceiling: dict[str, Any]) -> float:
    """A case's throughput as a share of its ceiling's.

    Measured in rounds (each run knows its ``round``), the median of the
    rounds' own ratios: each compares two runs seconds apart. Older results
    without rounds: the ratio of the medians.
    """
    ours: dict[int, float] = {r["round"]: r["rps"] for r in case["runs"] if "round" in r}
    theirs: dict[int, float] = {r["round"]: r["rps"] for r in ceiling["runs"] if "round" in r}
    shared = sorted(set(ours) & set(theirs))
    if not shared:
        return float(case["rps"] / ceiling["rps"])
    ratios = sorted(ours[n] / theirs[n] for n in shared)
    middle = len(ratios) // 2
    if len(ratios) % 2:
        return ratios[middle]
    return (ratios[middle - 1] + ratios[middle]) / 2


def _rounds_said(result: dict[str, Any]) -> str:
    runs = [r for c in _cases(result, "endpoints").values() for r in c["runs"]]
    if not runs or any("round" not in r for r in runs):
        return ""
    return (
        " (the endpoints and their ceilings in rounds, each case once a round; a ratio"
        " is the median of the rounds' ratios)"
    )


def endpoints_table(result: dict[str, Any]) -> list[str]:
    cases = _cases(result, "endpoints")
    if not cases:
        return []
    lines = [
        "| Case | req/s | p50 ms | p99 ms | rows written per request | ratio to ceiling "
        "| target | met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, label in CEILINGS.items():
        if name in cases:
            c = cases[name]
            lines.append(f"| {label} | {_figures(c)} | {_wrote(c)} | | | |")
    for name, (label, ceiling, target) in ENDPOINTS.items():
        if name not in cases:
            continue
        c = cases[name]
        share = ratio(c, cases[ceiling]) if ceiling in cases else None
        short = ceiling.removeprefix("ceiling_").replace("_", " ")
        ratio_text = f"{share:.2f} {TIMES} {short}" if share else ""
        goal, met = "", ""
        if target and share:
            goal = f"≥ {target:.2f} {TIMES}"
            met = "yes" if share >= target else "**no**"
        lines.append(f"| `{label}` | {_figures(c)} | {_wrote(c)} | {ratio_text} | {goal} | {met} |")
    return lines


def backends_table(postgresql: dict[str, Any], mariadb: dict[str, Any]) -> list[str]:
    """The endpoints on two backends, each case against its own backend's ceiling."""
    pg, my = _cases(postgresql, "endpoints"), _cases(mariadb, "endpoints")
    lines = [
        "| Case | PostgreSQL req/s | p99 ms | of its ceiling "
        "| MariaDB req/s | p99 ms | of its ceiling | MariaDB / PostgreSQL |",
        "|---|---|---|---|---|---|---|---|",
    ]
    # The ceilings run on each backend's own raw driver (asyncpg, asyncmy).
    labels: dict[str, tuple[str, str | None]] = {
        n: (
            label.replace("raw asyncpg", "raw driver")
            .replace("asyncpg fetchrow", "one-row fetch")
            .replace("asyncpg", "raw driver"),
            None,
        )
        for n, label in CEILINGS.items()
    }
    labels |= {n: (f"`{label}`", ceiling) for n, (label, ceiling, _) in ENDPOINTS.items()}
    for name, (label, ceiling) in labels.items():
        if name not in pg or name not in my:
            continue
        cells = []
        for cases in (pg, my):
            share = ""
            if ceiling is not None and ceiling in cases:
                share = f"{ratio(cases[name], cases[ceiling]):.2f}"
            cells.append(f"{_n(cases[name]['rps'])} | {_ms(cases[name]['p99_ms'])} | {share}")
        lines.append(f"| {label} | {' | '.join(cells)} | {my[name]['rps'] / pg[name]['rps']:.2f} |")
    return lines


def sync_async_table(result: dict[str, Any]) -> list[str]:
    cases = _cases(result, "sync_async")
    if not cases:
        return []
    lines = [
        "| C | ideal C/0.1 s | `async def` + `await asyncio.sleep` | share of ideal "
        "| `def` + `time.sleep` | share of ideal |",
        "|---|---|---|---|---|---|",
    ]
    for c in (50, 200, 1000):
        a, s = cases.get(f"async_c{c}"), cases.get(f"sync_c{c}")
        if a and s:
            lines.append(
                f"| {c} | {_n(c / 0.1)} | {_n(a['rps'])} req/s (p99 {_ms(a['p99_ms'])} ms) "
                f"| {a['rps'] / (c / 0.1):.0%} | {_n(s['rps'])} req/s (p99 {_ms(s['p99_ms'])} ms) "
                f"| {s['rps'] / (c / 0.1):.0%} |"
            )
    return lines


def fanout_table(result: dict[str, Any]) -> list[str]:
    cases = _cases(result, "fanout")
    lines: list[str] = []
    if cases:
        lines += ["| Three 100 ms waits (C=10) | req/s | p50 ms | p99 ms |", "|---|---|---|---|"]
        for name in ("three_waits_sequential", "three_waits_taskgroup"):
            if name in cases:
                c = cases[name]
                lines.append(f"| {name.removeprefix('three_waits_')} | {_figures(c)} |")
    extras = result.get("extras", {})
    if "previews" in extras:
        p = extras["previews"]
        lines += [
            "",
            "Link previews of one article, each link's upstream answering after 100 ms (cold):",
            "",
            "| links | median ms |",
            "|---|---|",
        ]
        for k in (1, 5, 10, 20):
            if f"k={k}" in p:
                lines.append(f"| {k} | {_ms(p[f'k={k}']['median_ms'])} |")
    if "stats" in extras:
        s = extras["stats"]
        lines += [
            "",
            f"Dashboard stats (six queries): concurrently {_ms(s['concurrent_ms'])} ms, one after "
            f"another {_ms(s['sequential_ms'])} ms (ratio {s['ratio']:.2f}).",
        ]
    return lines


def blocking_table(result: dict[str, Any]) -> list[str]:
    cases = _cases(result, "blocking")
    if "tags_alone" not in cases:
        return []
    idle = cases["tags_alone"]["p99_ms"]
    lines = [
        "| `GET /api/tags` (C=4) | req/s | p50 ms | p99 ms | p99 / alone | logins/s alongside |",
        "|---|---|---|---|---|---|",
    ]
    labels = {
        "tags_alone": "alone",
        "tags_during_logins": "16 clients logging in (argon2 in worker threads)",
        "tags_during_logins_on_loop": "16 clients logging in, argon2 on the event loop (demo)",
    }
    for name, label in labels.items():
        if name in cases:
            c = cases[name]
            storm = c.get("alongside")
            logins = _n(storm["rps"]) if storm else ""
            lines.append(
                f"| {label} | {_figures(c)} | {c['p99_ms'] / idle:.1f} {TIMES} | {logins} |"
            )
    return lines


def workers_table(result: dict[str, Any]) -> list[str]:
    cases = _cases(result, "workers")
    if not cases:
        return []
    lines = ["| Read mix, C=64 | req/s | p50 ms | p99 ms |", "|---|---|---|---|"]
    for name in sorted(cases):
        c = cases[name]
        lines.append(f"| {c.get('workers', '?')} worker(s) | {_figures(c)} |")
    return lines


def section(result: dict[str, Any], source: Path) -> str:
    m = result["machine"]
    packages = ", ".join(f"{k} {v}" for k, v in m["packages"].items())
    errors = sum(c["errors"] for c in result["cases"])
    shown = source.relative_to(ROOT) if source.is_relative_to(ROOT) else source.name
    parts = [
        BEGIN,
        "<!-- generated by bench/report.py from the file named below; do not edit by hand -->",
        "",
        f"Run of {result['when']} (`{shown}`), mode `{result['mode']}`: {result['runs']} runs "
        f"of {result['seconds_per_run']:.0f} s per case after a warm-up, medians shown"
        f"{_rounds_said(result)}; "
        f"{errors} error responses in all; {result['wall_s']:.0f} s wall.",
        "",
        f"- Machine: {m['cpu']}, {m['cores']} cores, Linux {m['kernel']}, Python {m['python']}.",
        f"- {m['postgresql']}; {m['wrk']}; {packages}.",
        f"- Data (seed {result['seed']}): "
        + ", ".join(f"{v:,} {k}" for k, v in result["data"].items())
        + ".",
        "",
        "### RealWorld endpoints (C=64) and their ceilings",
        "",
        *endpoints_table(result),
        "",
        "![Throughput per endpoint](bench/throughput.png)",
        "![Latency per endpoint](bench/latency.png)",
        "",
        "### Async vs sync under I/O wait",
        "",
        *sync_async_table(result),
        "",
        "![Throughput vs concurrency](bench/concurrency.png)",
        "",
        "### Fan-out",
        "",
        *fanout_table(result),
        "",
        "### A blocking call hurts everyone",
        "",
        *blocking_table(result),
        "",
        "### One and two workers",
        "",
        *workers_table(result),
        "",
        END,
    ]
    return "\n".join(parts)


def write_docs(result: dict[str, Any], source: Path) -> None:
    """Regenerate the section in docs/benchmarks.md; keep its result file beside the plots."""
    PLOTS.mkdir(parents=True, exist_ok=True)
    kept = PLOTS / source.name
    if source.resolve() != kept.resolve():
        kept.write_text(source.read_text())
    text = DOC.read_text()
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    DOC.write_text(head + section(result, kept) + tail)
    print(f"updated {DOC}")


def plots(result: dict[str, Any], folder: Path) -> list[Path]:
    import matplotlib  # noqa: PLC0415 - only when plotting

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    folder.mkdir(parents=True, exist_ok=True)
    made: list[Path] = []
    endpoints = _cases(result, "endpoints")
    if endpoints:
        names = [n for n in (*CEILINGS, *ENDPOINTS) if n in endpoints]
        short = {
            SMALL: "ceiling: FastAPI, small dict",
            "ceiling_20_articles": "ceiling: FastAPI, 20 articles",
            DB: "ceiling: asyncpg, list page",
            READ: "ceiling: one-row read",
            WRITE: "ceiling: write",
        }
        labels = [short.get(n, n) for n in names]
        colors = ["#999999" if n in CEILINGS else "#3b6ea8" for n in names]
        fig, ax = plt.subplots(figsize=(9, 6))
        ax.barh(labels, [endpoints[n]["rps"] for n in names], color=colors)
        for y, n in enumerate(names):
            _, ceiling, share = ENDPOINTS.get(n, ("", "", None))
            if share and ceiling in endpoints:
                # Where the bar must reach to meet the table's ratio (of the
                # rounds' ratios): this case's figure over that ratio, times the share.
                target = share * endpoints[n]["rps"] / ratio(endpoints[n], endpoints[ceiling])
                ax.plot([target, target], [y - 0.4, y + 0.4], "r-")
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.set_xlabel("requests per second (median of runs, log scale); red: target")
        ax.set_title("Throughput per endpoint, one worker, C=64 (grey: ceilings)")
        fig.tight_layout()
        made.append(_save(fig, folder / "throughput.png"))

        fig, ax = plt.subplots(figsize=(9, 5))
        ys = range(len(names))
        ax.barh(
            [y - 0.2 for y in ys], [endpoints[n]["p50_ms"] for n in names], height=0.4, label="p50"
        )
        ax.barh(
            [y + 0.2 for y in ys], [endpoints[n]["p99_ms"] for n in names], height=0.4, label="p99"
        )
        ax.set_yticks(list(ys), labels)
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.set_xlabel("latency, ms (log scale)")
        ax.set_title("Latency per endpoint at C=64")
        ax.legend()
        fig.tight_layout()
        made.append(_save(fig, folder / "latency.png"))
    io = _cases(result, "sync_async")
    if io:
        levels = [c for c in (50, 200, 1000) if f"async_c{c}" in io and f"sync_c{c}" in io]
        fig, ax = plt.subplots(figsize=(7, 4.5))
        ax.plot(levels, [c / 0.1 for c in levels], "k--", label="ideal C / 0.1 s")
        ax.plot(
            levels,
            [io[f"async_c{c}"]["rps"] for c in levels],
            "o-",
            label="async def + await sleep",
        )
        ax.plot(
            levels,
            [io[f"sync_c{c}"]["rps"] for c in levels],
            "s-",
            label="def + time.sleep (threadpool)",
        )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("concurrent clients (C)")
        ax.set_ylabel("requests per second")
        ax.set_title("100 ms of I/O wait per request")
        ax.legend()
        fig.tight_layout()
        made.append(_save(fig, folder / "concurrency.png"))
    return made


def _save(fig: Any, path: Path) -> Path:
    fig.savefig(path, dpi=100)
    import matplotlib.pyplot as plt  # noqa: PLC0415

    plt.close(fig)
    return path


def main() -> None:
    """``report.py RESULT.json``: the docs and plots of a full run;
    ``report.py backends PG.json MARIADB.json``: the two backends' endpoints, as Markdown."""
    if sys.argv[1] == "backends":
        runs = [json.loads(Path(arg).read_text()) for arg in sys.argv[2:4]]
        print("\n".join(backends_table(*runs)))
        return
    source = Path(sys.argv[1])
    result = json.loads(source.read_text())
    write_docs(result, source.resolve())
    for path in plots(result, PLOTS):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
