"""The benchmark suite (issue 6): ``make bench``, ``make bench-quick``, ``asyncpress bench``.

Starts PostgreSQL (pinned to CPU 1) and, for the scale-out scenario, Redis;
seeds a fixed data set; serves asyncpress and the baselines with one
uvicorn worker pinned to CPU 0; drives them with wrk pinned to CPU 1.
Every case is warmed up, then run 3 times (1 with --quick): the endpoints
and their ceilings in rounds, each case once per round. The medians go to
``bench/results/suite-<timestamp>.json``, and a full run also regenerates
the table in ``docs/benchmarks.md`` and the plots in ``docs/bench/``.

    python -m bench.suite                       # full run (< 20 min)
    python -m bench.suite --quick               # < 3 min, fewer and shorter runs
    python -m bench.suite --dry                 # ~2 min: checks the harness only
    python -m bench.suite --smoke endpoints     # ~25 s: the harness test (a few cases)
    python -m bench.suite endpoints sync_async  # some scenarios only
    python -m bench.suite --profile tags        # py-spy the server during a case

Scenarios: endpoints, sync_async, fanout, blocking, workers (see
docs/benchmarks.md for what each one shows).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from servers.mariadb import MariaDBServer, find_binary
from servers.postgres import PostgresServer, free_port
from servers.processes import Process, RedisServer, wait_for_port
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from asyncpress.cli import seed_database
from asyncpress.cli.seed import SEED_PASSWORD
from asyncpress.core.config import Settings
from asyncpress.core.security import Tokens
from bench import features, loadgen, report
from bench.loadgen import Grid, Load, Target

RESULTS = Path(__file__).parent / "results"
SECRET = "bench-suite-secret-" + "x" * 40
SCENARIOS = ("endpoints", "sync_async", "fanout", "blocking", "workers")
# The write cases and the table each one's requests add rows to (or take from).
WRITES = {
    "ceiling_write": "favorites",
    "create_article": "articles",
    "favorite": "favorites",
    "unfavorite": "favorites",
    "follow": "follows",
    "unfollow": "follows",
    "comment": "comments",
}


@dataclass(frozen=True)
class Mode:
    """How long and how big: full, quick or dry."""

    name: str
    seconds: float  # per measured run
    warmup_s: float
    runs: int
    scale: float  # of the data set
    previews_rounds: int
    stats_repeats: int
    # Cases whose requests wait seconds (C=1000 sync, the blocking demo) ask
    # for long runs; this caps them (None: as asked).
    longest_s: float | None
    # Only the cheapest cases of each scenario: proves the harness end to end.
    smoke: bool = False


MODES = {
    "full": Mode("full", 8, 2, 3, 1.0, 5, 15, None),
    "quick": Mode("quick", 2, 0, 1, 1.0, 2, 3, 4),
    "dry": Mode("dry", 1, 0, 1, 0.02, 1, 1, 0),
    "smoke": Mode("smoke", 1, 0, 1, 0.02, 1, 1, 0, smoke=True),
}
# The endpoint loads a smoke run measures (a read with its count, a cached read).
SMOKE_ENDPOINTS = ("list", "tags", "favorite", "unfavorite", "comment", "create_article")
COMMENT_BODY = "A comment the benchmark wrote."
SMOKE_CEILINGS = ("ceiling_small_dict", "ceiling_database", "ceiling_one_row_read", "ceiling_write")

DATA = {
    "users": 1_000,
    "articles": 20_000,
    "comments": 30_000,
    "favorites": 10_000,
    "follows": 5_000,
}


@dataclass
class Fixtures:
    """What the request lines are made of, read from the seeded database."""

    viewer_ids: list[int]
    tokens: list[str]
    feed_tokens: list[str]
    slugs: list[str]
    tags: list[str]
    usernames: list[str]
    emails: list[str]
    # For writes that must each change a row (bench.loadgen.Grid): articles
    # to favorite (apart: asyncpress's and the write ceiling's) and users to
    # follow (none of them a viewer, who cannot follow themselves).
    write_slugs: list[str]
    ceiling_slugs: list[str]
    ceiling_tokens: list[str]  # every user's: the write ceiling's grid is the largest
    followees: list[str]


# What the endpoint writes add that no undo case takes back (``take_back_writes``),
# in SQL both backends speak; the parameters are the new articles' titles and
# the comments' body of ``endpoint_loads``.
TAKE_BACK = tuple(
    text(sql)
    for sql in (
        "UPDATE tags SET uses = uses - (SELECT count(*) FROM article_tags"
        " WHERE article_tags.tag_id = tags.id AND article_id IN"
        " (SELECT id FROM articles WHERE title LIKE :titles))"
        " WHERE id IN (SELECT tag_id FROM article_tags WHERE article_id IN"
        " (SELECT id FROM articles WHERE title LIKE :titles))",
        "DELETE FROM articles WHERE title LIKE :titles",
        "DELETE FROM comments WHERE body = :body",
    )
)
ARTICLE_TITLE = "Bench article "


@dataclass
class Turn:
    """One case of a scenario measured in rounds (``Bench.rounds``)."""

    name: str
    once: Callable[[], dict[str, Any]]  # one measured run
    warm: Callable[[], object]
    pid: int | None  # the server to let settle after each run (None: no server)
    concurrency: int
    info: dict[str, Any] = field(default_factory=dict)

    def settle(self) -> None:
        if self.pid is not None:
            settle(self.pid)


@dataclass
class Bench:
    mode: Mode
    work: Path
    db: PostgresServer | MariaDBServer
    url: str
    fixtures: Fixtures
    profile: set[str]
    cases: list[dict[str, Any]] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)

    # -- servers -----------------------------------------------------------

    def env(self, **extra: str) -> dict[str, str]:
        # Production defaults (argon2 included) but for the secret and quiet logs.
        return {
            "DATABASE_URL": self.url,
            "ENVIRONMENT": "production",
            "JWT_SECRET": SECRET,
            "RATE_LIMITS": "false",  # load tests log in and register from one address
            "LOG_LEVEL": "WARNING",
            "OUTBOX_IN_PROCESS": "false",
            **extra,
        }

    @contextmanager
    def server(
        self, name: str, factory: str | None = None, workers: int = 1, **extra: str
    ) -> Iterator[tuple[str, int]]:
        port = free_port()
        cpus = "0" if workers == 1 else "0,1"
        args = ["taskset", "-c", cpus, sys.executable, "-m", "asyncpress.cli", "serve"]
        args += ["--port", str(port), "--workers", str(workers)]
        if factory:
            args += ["--factory", factory]
        process = Process(args, self.work / f"{name}.log", self.env(**extra), raw=True)
        try:
            wait_for_port(port, timeout=60)
            yield f"http://127.0.0.1:{port}", process.popen.pid
        finally:
            try:
                process.stop(30)
            except subprocess.TimeoutExpired:
                process.kill()

    # -- measuring ---------------------------------------------------------

    def fit(self, load: Load) -> Load:
        """Shorter long runs in the quick and dry modes."""
        if self.mode.longest_s is None:
            return load
        return replace(load, min_seconds=min(load.min_seconds, self.mode.longest_s))

    def measure(
        self, scenario: str, name: str, base: str, load: Load, pid: int, **info: Any
    ) -> dict[str, Any]:
        """Warm up, then ``runs`` wrk runs; the case with its median run."""
        [case] = self.rounds(scenario, [self.turn(name, base, load, pid, **info)])
        return case

    def turn(self, name: str, base: str, load: Load, pid: int, **info: Any) -> Turn:
        """A wrk case to measure in rounds."""
        load = self.fit(load)
        warm = replace(load, min_seconds=0)
        return Turn(
            name,
            lambda: loadgen.run(base, load, self.mode.seconds, self.work, name),
            lambda: loadgen.run(base, warm, self.mode.warmup_s, self.work, name),
            pid,
            load.concurrency,
            info,
        )

    def rounds(
        self, scenario: str, turns: list[Turn], after_round: Callable[[], object] | None = None
    ) -> list[dict[str, Any]]:
        """Measure ``turns`` in rounds: every case once per round, ``runs`` rounds.

        A case and its ceiling measured minutes apart can differ by a fifth
        on this machine's shared cores for no reason of their own (docs/
        benchmarks.md); taking turns, each in every round, exposes them to
        the same minutes. Each case is warmed up first. A write case also
        records how many rows of its table its runs changed per request (1.0:
        every request wrote; less: some repeated a write already done, which
        costs less). ``after_round`` runs after the warm-ups and after each
        round: it puts back what the writes added, so that every round reads
        the same data.
        """
        if self.mode.warmup_s:
            for t in turns:
                t.warm()
                t.settle()
            if after_round:
                after_round()
        runs: dict[str, list[dict[str, Any]]] = {t.name: [] for t in turns}
        changed = dict.fromkeys(runs, 0)
        for number in range(self.mode.runs):
            for t in turns:
                table = WRITES.get(t.name)
                before = self.rows(table) if table else 0
                # py-spy follows a case's first run only: one profile per case.
                with self.profiling(t.name, t.pid) if number == 0 else nullcontext():
                    done = t.once()
                t.settle()
                runs[t.name].append({**done, "round": number})
                if table:
                    changed[t.name] += abs(self.rows(table) - before)
                if len(turns) > 1:
                    print(
                        f"    round {number + 1} {t.name:<26} {done['rps']:>9.1f} req/s", flush=True
                    )
            if after_round:
                after_round()
        cases = []
        for t in turns:
            info = dict(t.info)
            if t.name in WRITES:
                requests = sum(r["sent"] for r in runs[t.name])
                info["rows_changed"] = changed[t.name]
                info["requests_sent"] = requests
                info["changed_per_request"] = round(changed[t.name] / requests, 3)
            cases.append(
                self.record(scenario, t.name, runs[t.name], concurrency=t.concurrency, **info)
            )
        return cases

    def take_back_writes(self) -> None:
        """Remove the articles and comments the write cases added, and their tag uses.

        The favorites and follows are taken back by their undo cases; a new
        article and a comment have none, and the reads of the next round
        (a list's count, an article's comments) would read more rows.
        """

        async def clean() -> None:
            engine = create_async_engine(self.url)
            try:
                values = {"titles": f"{ARTICLE_TITLE}%", "body": COMMENT_BODY}
                async with engine.begin() as connection:
                    for statement in TAKE_BACK:
                        await connection.execute(statement, values)
                if isinstance(self.db, PostgresServer):
                    tidy = engine.execution_options(isolation_level="AUTOCOMMIT")
                    async with tidy.connect() as connection:
                        await connection.exec_driver_sql(
                            "VACUUM ANALYZE articles, article_tags, comments, tags"
                        )
            finally:
                await engine.dispose()

        asyncio.run(clean())

    def rows(self, table: str, of: str = "count(*)") -> int:
        async def count() -> int:
            engine = create_async_engine(self.url)
            try:
                async with engine.connect() as connection:
                    found = await connection.exec_driver_sql(f"SELECT {of} FROM {table}")  # noqa: S608
                    return int(found.scalar_one())
            finally:
                await engine.dispose()

        return asyncio.run(count())

    @property
    def dsn(self) -> str:
        """The seeded database for the raw-driver ceilings (a libpq DSN or the MySQL URL)."""
        return self.db.dsn("bench") if isinstance(self.db, PostgresServer) else self.url

    def record(
        self, scenario: str, name: str, runs: list[dict[str, Any]], **info: Any
    ) -> dict[str, Any]:
        median = sorted(runs, key=lambda r: r["rps"])[len(runs) // 2]
        case = {
            "scenario": scenario,
            "name": name,
            **info,
            "rps": median["rps"],
            "p50_ms": median["p50_ms"],
            "p99_ms": median["p99_ms"],
            # A storm run alongside (the blocking scenario) must be error-free too.
            "errors": sum(r.get("error_count", 0) for r in [*runs, info.get("alongside") or {}]),
            "runs": runs,
        }
        self.cases.append(case)
        flag = "" if case["errors"] == 0 else f"  ERRORS: {case['errors']}"
        print(
            f"{scenario:>10} {name:<28} {case['rps']:>9.1f} req/s"
            f"  p50 {case['p50_ms']:>8.2f} ms  p99 {case['p99_ms']:>8.2f} ms{flag}",
            flush=True,
        )
        return case

    @contextmanager
    def profiling(self, name: str, pid: int | None) -> Iterator[None]:
        if name not in self.profile or pid is None:
            yield
            return
        out = RESULTS / f"profile-{name}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.txt"
        spy = Path(sys.executable).with_name("py-spy")
        command = [str(spy), "record", "-p", str(pid), "--nonblocking", "-r", "200"]
        process = subprocess.Popen(  # noqa: S603
            [*command, "-f", "raw", "-o", str(out)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            yield
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(60)
            print(f"profile of {name}: {out}", flush=True)

    def concurrent(
        self, scenario: str, name: str, base: str, pid: int, load: Load, storm: Load
    ) -> None:
        """Measure ``load`` while ``storm`` runs the whole time; record both."""
        load = self.fit(load)
        length = self.mode.runs * max(self.mode.seconds, load.min_seconds) + 3
        background = loadgen.start(base, storm, length, self.work, f"{name}-storm")
        time.sleep(1.0)  # the storm is on before the measured load starts
        try:
            runs = [
                loadgen.run(base, load, self.mode.seconds, self.work, name)
                for _ in range(self.mode.runs)
            ]
        finally:
            alongside = loadgen.finish(background, length + 120)
        settle(pid)
        self.record(scenario, name, runs, concurrency=load.concurrency, alongside=alongside)


def _cpu_ticks(pid: int) -> int:
    """CPU time (clock ticks) of a process and its children (uvicorn workers)."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry.name) == pid or int(fields[1]) == pid:
            total += int(fields[11]) + int(fields[12])
    return total


def settle(pid: int, limit_s: float = 90.0) -> None:
    """Wait until the server has worked off what a run left queued.

    wrk stops counting when its time is up, but the requests it had sent
    (64 argon2 logins are seconds of work) still run and would slow the next
    case: wait until the server uses under 10 % of a CPU.
    """
    deadline = time.monotonic() + limit_s
    hertz = os.sysconf("SC_CLK_TCK")
    while time.monotonic() < deadline:
        before = _cpu_ticks(pid)
        time.sleep(0.5)
        if (_cpu_ticks(pid) - before) / hertz < 0.05:
            return


# -- data ------------------------------------------------------------------


async def seed_data(url: str, mode: Mode, seed_value: int) -> dict[str, int]:
    """The data set, as ``asyncpress seed`` writes it (password ``password123``)."""
    settings = Settings(environment="development", database_url=url)
    sizes = {k: max(2, round(v * mode.scale)) for k, v in DATA.items()}
    done = await seed_database(settings, quiet=True, seed_value=seed_value, **sizes)
    return dict(done.counts)


async def read_fixtures(url: str, seed_value: int) -> Fixtures:
    rng = random.Random(seed_value)
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:

            async def fetch(sql: str) -> list[Any]:
                return list((await conn.exec_driver_sql(sql)).mappings().all())

            users = await fetch("SELECT id, username, email FROM users ORDER BY id")
            followers = [
                r["follower_id"]
                for r in await fetch("SELECT DISTINCT follower_id FROM follows ORDER BY 1")
            ]
            slugs = [r["slug"] for r in await fetch("SELECT slug FROM articles ORDER BY id")]
            tags = [r["name"] for r in await fetch("SELECT name FROM tags ORDER BY name")]
    finally:
        await engine.dispose()
    tokens = Tokens(SECRET, 7 * 24 * 3600)
    # At most half of the users read and write, so that others remain to follow.
    viewers = rng.sample(users, min(200, len(users) // 2))
    feed_viewers = rng.sample(followers, min(200, len(followers)))
    viewer_ids = {u["id"] for u in viewers}
    others = [u["username"] for u in users if u["id"] not in viewer_ids]
    shuffled = rng.sample(slugs, len(slugs))
    half = len(shuffled) // 2
    return Fixtures(
        viewer_ids=[u["id"] for u in viewers],
        tokens=[tokens.issue(u["id"]) for u in viewers],
        feed_tokens=[tokens.issue(i) for i in feed_viewers],
        slugs=rng.sample(slugs, min(500, len(slugs))),
        tags=tags,
        usernames=[u["username"] for u in viewers],
        emails=[u["email"] for u in viewers],
        write_slugs=shuffled[:half][:2000],
        ceiling_slugs=shuffled[half:][:2000],
        ceiling_tokens=[tokens.issue(u["id"]) for u in users],
        followees=others,
    )


# -- scenarios -------------------------------------------------------------


def _pairs(tokens: list[str], items: list[str], make: Callable[[str, str], Target]) -> list[Target]:
    return [make(items[n % len(items)], tokens[n % len(tokens)]) for n in range(max(len(items), 1))]


def endpoint_loads(f: Fixtures) -> dict[str, Load]:
    """Every endpoint case; the writes' undos follow their writes, in this order."""
    favorites = Grid("/api/articles/{item}/favorite", f.tokens, f.write_slugs)
    follows = Grid("/api/profiles/{item}/follow", f.tokens, f.followees)
    c = json.dumps({"comment": {"body": COMMENT_BODY}})
    article = json.dumps(
        {
            "article": {
                "title": ARTICLE_TITLE + "{n}",
                "description": "Written by the benchmark",
                "body": "A body of a few words, as a short article has.",
                "tagList": f.tags[:2],
            }
        }
    )
    return {
        "list": Load("GET", [Target("/api/articles?limit=20", t) for t in f.tokens], 64),
        "list_by_tag": Load(
            "GET",
            _pairs(f.tokens, f.tags, lambda tag, t: Target(f"/api/articles?limit=20&tag={tag}", t)),
            64,
        ),
        "feed": Load("GET", [Target("/api/articles/feed?limit=20", t) for t in f.feed_tokens], 64),
        "article": Load(
            "GET", _pairs(f.tokens, f.slugs, lambda s, t: Target(f"/api/articles/{s}", t)), 64
        ),
        "comments": Load(
            "GET",
            _pairs(f.tokens, f.slugs, lambda s, t: Target(f"/api/articles/{s}/comments", t)),
            64,
        ),
        "tags": Load("GET", [Target("/api/tags")], 64),
        "profile": Load(
            "GET", _pairs(f.tokens, f.usernames, lambda u, t: Target(f"/api/profiles/{u}", t)), 64
        ),
        # C=16, not 64: about 5 logins/s fit on one core, so 64 in flight would
        # each wait 13 s, longer than a run.
        "login": Load("POST", [Target("/api/users/login", body=_login(e)) for e in f.emails], 16),
        "create_article": Load(
            "POST", [Target("/api/articles", t, article) for t in f.tokens], 64, unique_bodies=True
        ),
        "favorite": Load("POST", [], 64, grid=favorites),
        "unfavorite": Load("DELETE", [], 64, grid=favorites.again()),
        "follow": Load("POST", [], 64, grid=follows),
        "unfollow": Load("DELETE", [], 64, grid=follows.again()),
        "comment": Load(
            "POST",
            _pairs(f.tokens, f.slugs, lambda s, t: Target(f"/api/articles/{s}/comments", t, c)),
            64,
        ),
    }


def _login(email: str) -> str:
    return json.dumps({"user": {"email": email, "password": SEED_PASSWORD}})


# The order of a round: each ceiling just before the cases measured against it.
ROUND = (
    "ceiling_small_dict",
    "ceiling_20_articles",
    "ceiling_database",
    "list",
    "list_counting",
    "list_by_tag",
    "feed",
    "ceiling_one_row_read",
    "article",
    "comments",
    "tags",
    "profile",
    "login",
    "ceiling_write",
    "favorite",
    "unfavorite",
    "follow",
    "unfollow",
    "comment",
    "create_article",
)


def in_round_order(turns: dict[str, Turn]) -> list[Turn]:
    """``turns`` in ``ROUND``'s order; a case ``ROUND`` does not place is an error, not left out."""
    unplaced = sorted(set(turns) - set(ROUND))
    if unplaced:
        raise ValueError(f"bench.suite.ROUND does not place {', '.join(unplaced)}")
    return [turns[name] for name in ROUND if name in turns]


def scenario_endpoints(b: Bench) -> None:
    """Every endpoint and its ceiling, in rounds (``Bench.rounds``).

    The servers run side by side (the idle ones use no CPU to speak of), so
    that a round takes each case in turn.
    """
    loads = endpoint_loads(b.fixtures)
    f = b.fixtures
    grid = Grid("/api/articles/{item}/favorite", f.ceiling_tokens, f.ceiling_slugs)
    with ExitStack() as servers:
        base, pid = servers.enter_context(b.server("ceiling", "bench.apps:ceiling"))
        turns = {
            "ceiling_small_dict": b.turn(
                "ceiling_small_dict", base, Load("GET", [Target("/small")], 64), pid
            ),
            "ceiling_20_articles": b.turn(
                "ceiling_20_articles", base, Load("GET", [Target("/articles")], 64), pid
            ),
            "ceiling_one_row_read": b.turn("ceiling_one_row_read", base, loads["profile"], pid),
            "ceiling_write": b.turn("ceiling_write", base, Load("POST", [], 64, grid=grid), pid),
            "ceiling_database": Turn(
                "ceiling_database", lambda: _db_ceiling(b), lambda: None, None, 64
            ),
        }
        base, pid = servers.enter_context(b.server("asyncpress"))
        turns |= {name: b.turn(name, base, load, pid) for name, load in loads.items()}
        if b.mode.name not in {"quick", "smoke"}:
            # The list as the database ceiling does it: the count on every page.
            counting = b.server("asyncpress-counting", ARTICLES_COUNT_CACHE_S="0")
            base, pid = servers.enter_context(counting)
            turns["list_counting"] = b.turn("list_counting", base, loads["list"], pid)
        if b.mode.smoke:
            wanted = {*SMOKE_ENDPOINTS, *SMOKE_CEILINGS}
            turns = {name: t for name, t in turns.items() if name in wanted}
        b.rounds("endpoints", in_round_order(turns), b.take_back_writes)
    # What the rounds left: the seeded data, which the harness test checks.
    b.extras["rows_after_rounds"] = {
        "articles": b.rows("articles"),
        "comments": b.rows("comments"),
        "article_tags": b.rows("article_tags"),
        "tag_uses": b.rows("tags", "sum(uses)"),
    }


def _db_ceiling(b: Bench) -> dict[str, Any]:
    viewers = ",".join(str(v) for v in b.fixtures.viewer_ids)
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "bench.dbceiling", b.dsn, str(b.mode.seconds), viewers],
        cwd=Path(__file__).parent.parent,
        capture_output=True,
        text=True,
        check=True,
        timeout=b.mode.seconds + 120,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def scenario_sync_async(b: Bench) -> None:
    with b.server("ceiling-io", "bench.apps:ceiling") as (base, pid):
        for kind in ("async", "sync"):
            for c in (50, 200, 1000):
                # At C=1000 a threadpool of 40 makes each request wait 2.5 s: long runs.
                load = Load("GET", [Target(f"/io/{kind}")], c, min_seconds=8 if c == 1000 else 0)
                case = b.measure("sync_async", f"{kind}_c{c}", base, load, pid)
                case["ideal_rps"] = c / 0.1
                case["of_ideal"] = round(case["rps"] / case["ideal_rps"], 3)


def scenario_fanout(b: Bench) -> None:
    with b.server("ceiling-fanout", "bench.apps:ceiling") as (base, pid):
        for kind in ("sequential", "taskgroup"):
            b.measure(
                "fanout",
                f"three_waits_{kind}",
                base,
                Load("GET", [Target(f"/fanout/{kind}")], 10),
                pid,
            )
    upstream_port = free_port()
    upstream = Process(["-m", "servers.upstream", str(upstream_port)], b.work / "upstream.log")
    try:
        wait_for_port(upstream_port)
        with b.server("asyncpress-previews", PREVIEW_ALLOWED_HOSTS="localhost") as (base, _):
            b.extras["previews"] = asyncio.run(
                features.fan_out(base, f"http://localhost:{upstream_port}", b.mode.previews_rounds)
            )
    finally:
        upstream.kill()
    b.extras["stats"] = asyncio.run(features.stats_compare(b.url, b.mode.stats_repeats))
    print(f"    fanout previews {json.dumps(b.extras['previews'])}", flush=True)
    print(f"    fanout stats {json.dumps(b.extras['stats'])}", flush=True)


def scenario_blocking(b: Bench) -> None:
    # Long runs: with argon2 on the loop, a request waits seconds.
    tags = Load("GET", [Target("/api/tags")], 4, min_seconds=8)
    logins = [Target("/api/users/login", body=_login(e)) for e in b.fixtures.emails]
    on_loop = [Target("/bench/login-on-loop", body=_login(e)) for e in b.fixtures.emails]
    # 16 clients that log in without pause keep 16 logins queued at the
    # 1 to 2 logins/s the hashing threads get (they yield to the loop): each
    # waits 8 to 15 s. The production deadline (REQUEST_TIMEOUT_S, 15 s)
    # would answer some of them 504; this server allows 60 s, so that the
    # storm runs without errors and the figures show what it costs.
    with b.server("asyncpress-blocking", "bench.apps:blocking", REQUEST_TIMEOUT_S="60") as (
        base,
        pid,
    ):
        b.measure("blocking", "tags_alone", base, tags, pid)
        b.concurrent("blocking", "tags_during_logins", base, pid, tags, Load("POST", logins, 16))
        b.concurrent(
            "blocking", "tags_during_logins_on_loop", base, pid, tags, Load("POST", on_loop, 16)
        )


def read_mix(f: Fixtures) -> Load:
    loads = endpoint_loads(f)
    mix: list[Target] = []
    for name in ("list", "article", "comments", "profile", "tags", "article", "profile", "feed"):
        mix += loads[name].targets[:50]
    random.Random(1).shuffle(mix)
    return Load("GET", mix, 64)


def scenario_workers(b: Bench) -> None:
    redis = RedisServer(b.work)
    redis.start()
    try:
        for workers in (1, 2):
            with b.server(f"asyncpress-w{workers}", workers=workers, REDIS_URL=redis.url) as (
                base,
                pid,
            ):
                b.measure(
                    "workers",
                    f"read_mix_{workers}_worker",
                    base,
                    read_mix(b.fixtures),
                    pid,
                    workers=workers,
                )
    finally:
        redis.kill()


RUNNERS = {
    "endpoints": scenario_endpoints,
    "sync_async": scenario_sync_async,
    "fanout": scenario_fanout,
    "blocking": scenario_blocking,
    "workers": scenario_workers,
}


# -- the run -----------------------------------------------------------------


def machine(db: PostgresServer | MariaDBServer) -> dict[str, Any]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    if isinstance(db, PostgresServer):
        server = ("postgresql", str(db.bindir / "postgres"))
    else:
        server = ("mariadb", find_binary("mariadbd"))
    server_version = subprocess.run(  # noqa: S603
        [server[1], "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    packages = (
        "fastapi",
        "starlette",
        "uvicorn",
        "pydantic",
        "sqlalchemy",
        "asyncpg",
        "asyncmy",
        "uvloop",
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        server[0]: server_version,
        "wrk": loadgen.wrk_version(),
        "packages": {name: version(name) for name in packages},
    }


def _database(backend: str) -> tuple[PostgresServer | MariaDBServer, str]:
    """The benchmark's database server, pinned beside wrk, and the URL of its database."""
    if backend == "mariadb":
        # Commits not flushed, as the suite's PostgreSQL runs with fsync=off.
        maria = MariaDBServer.start()
        maria.pin({loadgen.LOADGEN_CPU})
        maria.create_database("bench")
        return maria, maria.url("bench")
    pg = PostgresServer.start()
    pg.pin({loadgen.LOADGEN_CPU})
    pg.psql("CREATE DATABASE bench")
    return pg, pg.url("bench")


def run(
    mode: Mode,
    scenarios: list[str],
    seed_value: int,
    profile: set[str],
    backend: str = "postgresql",
) -> dict[str, Any]:
    started = time.perf_counter()
    pg, url = _database(backend)
    try:
        with TemporaryDirectory(prefix="asyncpress-bench-") as tmp:
            work = Path(tmp)
            migrate = Process(
                ["-m", "asyncpress.cli", "db", "upgrade"],
                work / "migrate.log",
                {"DATABASE_URL": url, "ENVIRONMENT": "development"},
            )
            assert migrate.wait(120) == 0, migrate.log_path.read_text()
            counts = asyncio.run(seed_data(url, mode, seed_value))
            print(f"seeded {counts}", flush=True)
            fixtures = asyncio.run(read_fixtures(url, seed_value))
            bench = Bench(mode, work, pg, url, fixtures, profile)
            print(f"data ready after {time.perf_counter() - started:.0f} s", flush=True)
            for name in scenarios:
                begun = time.perf_counter()
                RUNNERS[name](bench)
                print(f"{name}: {time.perf_counter() - begun:.0f} s", flush=True)
        return {
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "mode": mode.name,
            "backend": backend,
            "seed": seed_value,
            "data": counts,
            "seconds_per_run": mode.seconds,
            "runs": mode.runs,
            "machine": machine(pg),
            "cases": bench.cases,
            "extras": bench.extras,
            "wall_s": round(time.perf_counter() - started, 1),
        }
    finally:
        pg.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="*", help=f"any of: {', '.join(SCENARIOS)} [all]")
    parser.add_argument("--quick", action="store_true", help="short runs (< 3 minutes)")
    parser.add_argument("--dry", action="store_true", help="check the harness; writes no docs")
    parser.add_argument(
        "--smoke", action="store_true", help="dry, with the cheapest cases only (the test)"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", action="append", default=[], help="case name to py-spy")
    parser.add_argument("--out", type=Path, help="results folder [bench/results]")
    parser.add_argument(
        "--backend",
        choices=("postgresql", "mariadb"),
        default="postgresql",
        help="the database the endpoints run on (mariadb: the endpoints scenario only)",
    )
    args = parser.parse_args(argv)
    mode = MODES[
        "smoke" if args.smoke else "dry" if args.dry else "quick" if args.quick else "full"
    ]
    default = ["endpoints"] if args.backend == "mariadb" else list(SCENARIOS)
    scenarios = list(args.scenarios) or default
    unknown = [s for s in scenarios if s not in SCENARIOS]
    if unknown:
        parser.error(
            f"unknown scenario(s): {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}"
        )
    if args.backend == "mariadb" and set(scenarios) - {"endpoints"}:
        parser.error("--backend mariadb runs the endpoints scenario only")
    result = run(mode, scenarios, args.seed, set(args.profile), args.backend)
    failed = [c["name"] for c in result["cases"] if c["errors"]]
    out_dir = args.out or RESULTS
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = result["when"].replace(":", "").replace("+0000", "Z")
    prefix = "suite" if args.backend == "postgresql" else f"suite-{args.backend}"
    out = out_dir / f"{prefix}-{stamp}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out} ({result['wall_s']} s)")
    if mode.name == "full" and scenarios == list(SCENARIOS) and not failed:
        report.write_docs(result, out)
    # The docs' plots are those of PostgreSQL's full runs of every scenario;
    # other runs plot beside their results.
    to_docs = mode.name == "full" and args.backend == "postgresql" and scenarios == list(SCENARIOS)
    plots = report.plots(result, report.PLOTS if to_docs else out_dir)
    print("plots: " + ", ".join(str(p) for p in plots))
    if failed:
        print(f"cases with errors: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
