"""CPU per request above the server: the apps' ASGI entry called directly, no HTTP.

wrk measures the whole server, uvicorn's HTTP work included, and its
figures move by a tenth between runs on this machine. This takes HTTP out:
it starts PostgreSQL (pinned to CPU 1), seeds the suite's quick data set,
builds asyncpress and the ceilings' app (``bench.apps:ceiling``) in this
process (pinned to CPU 0, uvloop), and calls each app's ASGI entry with
``concurrency`` requests in flight, reading this process's CPU time around
``requests`` of them. Rounds take turns between the apps; the best round of
each is the figure (what a quiet machine gives).

    python -m bench.inprocess                         # profile and tags, both apps
    python -m bench.inprocess article,comments --rounds 5
    python -m bench.inprocess profile --variant bare  # asyncpress without its layers
    python -m bench.inprocess profile --cprofile asyncpress:profile

``--variant bare`` also builds asyncpress with its pure-ASGI layers removed
(what they cost); ``--cprofile APP:CASE`` writes the last round's cProfile
statistics to ``bench/results/``. The ceilings' app serves only ``profile``
(its one-row read) and ``small``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import resource
import tempfile
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvloop
from servers.postgres import PostgresServer

from asyncpress.app.main import create_app
from asyncpress.core.config import get_settings
from bench.apps import ceiling
from bench.suite import RESULTS, Fixtures, read_fixtures
from bench.versions import REPO, _env, migrated_and_seeded

App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]
Request = tuple[str, str | None]  # path, token
CEILING_CASES = {"profile", "small"}


def _cpu_s() -> float:
    used = resource.getrusage(resource.RUSAGE_SELF)
    return used.ru_utime + used.ru_stime


def _cases(f: Fixtures) -> dict[str, Callable[[int], Request]]:
    def pick(items: list[str], i: int) -> str:
        return items[i % len(items)]

    return {
        "small": lambda i: ("/small", None),
        "profile": lambda i: (f"/api/profiles/{pick(f.usernames, i)}", pick(f.tokens, i)),
        "article": lambda i: (f"/api/articles/{pick(f.slugs, i)}", pick(f.tokens, i)),
        "comments": lambda i: (f"/api/articles/{pick(f.slugs, i)}/comments", pick(f.tokens, i)),
        "tags": lambda i: ("/api/tags", None),
    }


async def _get(app: App, path: str, token: str | None) -> int:
    headers = [(b"host", b"bench")]
    if token:
        headers.append((b"authorization", f"Token {token}".encode()))
    route, _, query = path.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": route,
        "raw_path": route.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "state": {},
    }
    body_sent = False
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        nonlocal body_sent
        if not body_sent:
            body_sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()  # the client never leaves
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    await app(scope, receive, send)
    return statuses[0]


async def _started(app: App) -> Callable[[], Awaitable[None]]:
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await inbox.put({"type": "lifespan.startup"})
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    task = asyncio.ensure_future(app(scope, inbox.get, outbox.put))
    started = await outbox.get()
    assert started["type"] == "lifespan.startup.complete", started

    async def stop() -> None:
        await inbox.put({"type": "lifespan.shutdown"})
        await outbox.get()
        await task

    return stop


async def _measure(
    apps: dict[str, App],
    cases: dict[str, Callable[[int], Request]],
    wanted: list[str],
    args: argparse.Namespace,
) -> dict[str, list[float]]:
    stops = [await _started(app) for app in apps.values()]
    figures: dict[str, list[float]] = {}
    try:
        for round_ in range(args.rounds):
            for name, app in apps.items():
                for case in wanted:
                    if case not in CEILING_CASES if name == "ceiling" else case == "small":
                        continue
                    for i in range(200):  # warm: caches of statements, tokens, routes
                        status = await _get(app, *cases[case](i))
                    assert status == 200, (name, case, status)
                    key = f"{name}:{case}"
                    profiler = (
                        cProfile.Profile()
                        if key == args.cprofile and round_ == args.rounds - 1
                        else None
                    )

                    async def client(first: int, app: App = app, case: str = case) -> None:
                        for i in range(first, args.requests, args.concurrency):
                            await _get(app, *cases[case](i))

                    before = _cpu_s()
                    if profiler:
                        profiler.enable()
                    await asyncio.gather(*(client(k) for k in range(args.concurrency)))
                    if profiler:
                        profiler.disable()
                        out = RESULTS / f"cprofile-{key.replace(':', '-')}.prof"
                        profiler.dump_stats(out)
                        print(f"cProfile of {key}: {out}")
                    used_us = (_cpu_s() - before) / args.requests * 1e6
                    figures.setdefault(key, []).append(used_us)
    finally:
        for stop in stops:
            await stop()
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="?", default="profile,tags")
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--variant", action="append", default=[], choices=["bare"])
    parser.add_argument("--cprofile", metavar="APP:CASE")
    args = parser.parse_args(argv)
    wanted = args.cases.split(",")
    pg = PostgresServer.start()
    try:
        pg.psql("CREATE DATABASE bench")
        url = pg.url("bench")
        with tempfile.TemporaryDirectory(prefix="asyncpress-inprocess-") as work:
            migrated_and_seeded(url, Path(work))
        fixtures = asyncio.run(read_fixtures(url, 1))
        # The settings bench.versions serves with; this process runs the
        # installed code, so no PYTHONPATH.
        served = _env(url, REPO / "src")
        served.pop("PYTHONPATH")
        os.environ.update(served)
        pg.pin({1})
        os.sched_setaffinity(0, {0})
        get_settings.cache_clear()  # both apps read the environment above
        apps: dict[str, App] = {"ceiling": ceiling(), "asyncpress": create_app()}
        for variant in args.variant:
            bare = create_app()
            bare.user_middleware.clear()
            apps[f"asyncpress-{variant}"] = bare
        figures = uvloop.run(_measure(apps, _cases(fixtures), wanted, args))
    finally:
        pg.stop()
    print("µs of CPU per request, each round; best")
    for key, rounds in figures.items():
        each = " ".join(f"{us:7.1f}" for us in rounds)
        print(f"{key:28} {each}   best {min(rounds):7.1f}")
    stamp = f"{datetime.now(UTC):%Y-%m-%dT%H%M%SZ}"
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"inprocess-{stamp}.json"
    result = {
        "when": stamp,
        "requests": args.requests,
        "concurrency": args.concurrency,
        "cpu_us_per_request": {k: {"rounds": v, "best": min(v)} for k, v in figures.items()},
    }
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
