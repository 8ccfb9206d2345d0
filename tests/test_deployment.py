"""The deployment recipe, run: nginx (deploy/nginx/asyncpress.conf) in front of
two ``asyncpress serve`` processes on PostgreSQL and Redis, and an
``asyncpress worker`` delivering their mail; every request goes through nginx.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from anyio.to_thread import run_sync
from servers.nginx import NginxServer
from servers.postgres import empty_database
from servers.processes import TEST_SECRET, Process, RedisServer

from tests.factories import Account, add_comment, create_article, register
from tests.support.http import TLS
from tests.support.live import Served, socket, sse, until

pytestmark = pytest.mark.postgres_only

# Events polled from the log only every 30 s: any that arrives sooner came
# through Redis from the process that wrote it.
SLOW_POLL = "30"


@dataclass
class Cluster:
    database_url: str
    folder: Path
    env: dict[str, str]
    apps: list[Served]
    worker: Process
    nginx: NginxServer

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.nginx.base, verify=TLS, timeout=10)

    def restart(self, n: int) -> None:
        """Drain app ``n`` at the balancer, stop it (SIGTERM), start it again, put it back."""
        old = self.apps[n]
        self.nginx.drain(old.port)
        # uvicorn exits by the signal it was stopped with, once shut down.
        assert old.process.stop(30) in (0, -15)
        assert "Application shutdown complete" in old.process.output()
        self.apps[n] = Served(
            self.database_url, self.folder, f"app-{n}", port=str(old.port), **self.env
        )
        self.nginx.drain(old.port, down=False)

    def stop(self) -> None:
        self.nginx.stop()
        self.worker.stop()
        for app in self.apps:
            app.process.stop(30)


@pytest.fixture(scope="module")
def shared_cluster(
    postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """One cluster for the module's tests (each writes rows of its own)."""
    folder = tmp_path_factory.mktemp("cluster")
    asyncio.run(empty_database(postgres_url))
    redis = RedisServer(folder)
    redis.start()
    env = {
        "REDIS_URL": redis.url,
        "MAILBOX_DIR": str(folder / "mail"),
        "OUTBOX_IN_PROCESS": "false",  # the worker sends the mail
        "EVENTS_POLL_S": SLOW_POLL,
    }
    apps = [Served(postgres_url, folder, f"app-{n}", **env) for n in range(2)]
    worker = Process(
        ["-m", "asyncpress.cli", "worker"],
        folder / "worker.log",
        {"DATABASE_URL": postgres_url, "ENVIRONMENT": "production", "JWT_SECRET": TEST_SECRET}
        | env,
    )
    (folder / "nginx").mkdir()
    nginx = NginxServer(folder / "nginx", [app.port for app in apps])
    running = Cluster(postgres_url, folder, env, apps, worker, nginx)
    try:
        nginx.start()
        yield running
    finally:
        running.stop()
        redis.kill()


@pytest.fixture
def cluster(backend: str, shared_cluster: Cluster) -> Cluster:
    """The module's cluster, for tests that run on PostgreSQL (``backend``)."""
    return shared_cluster


def _served_requests(app: Served) -> int:
    """Access lines in the app's JSON log."""
    return sum('"asyncpress.access"' in line for line in app.process.output().splitlines())


def _subjects(mail: Path, to: str) -> list[str]:
    """The subjects of the messages sent to ``to``."""
    subjects = []
    for message in mail.glob("*.eml"):
        head = message.read_text().split("\n\n", 1)[0].splitlines()
        if f"To: {to}" in head:
            subjects += [line.removeprefix("Subject: ") for line in head if line[:8] == "Subject:"]
    return sorted(subjects)


async def test_the_realworld_flow_through_the_balancer(cluster: Cluster) -> None:
    async with cluster.client() as http:
        ann = await register(http)
        ben = await register(http)
        login = await http.post(
            "/api/users/login", json={"user": {"email": ann.email, "password": ann.password}}
        )
        assert login.status_code == 200, login.text
        article = await create_article(http, ann, title="Behind nginx", tagList=["ops"])
        slug = article["slug"]
        follow = await http.post(f"/api/profiles/{ann.username}/follow", headers=ben.headers)
        assert follow.json()["profile"]["following"] is True
        favorite = await http.post(f"/api/articles/{slug}/favorite", headers=ben.headers)
        assert favorite.json()["article"]["favoritesCount"] == 1
        await add_comment(http, ben, slug, "Read through the balancer")
        feed = await http.get("/api/articles/feed", headers=ben.headers)
        assert [a["slug"] for a in feed.json()["articles"]] == [slug]
        comments = await http.get(f"/api/articles/{slug}/comments")
        assert [c["body"] for c in comments.json()["comments"]] == ["Read through the balancer"]
        assert "ops" in (await http.get("/api/tags")).json()["tags"]
        # The request id: the client's kept, or nginx's own when it sent none.
        mine = await http.get("/api/health", headers={"X-Request-ID": "trace-me-42"})
        assert mine.headers["x-request-id"] == "trace-me-42"
        given = await http.get("/api/health")
        assert re.fullmatch(r"[0-9a-f]{32}", given.headers["x-request-id"])
    # nginx spread the requests over both processes.
    assert all([await run_sync(_served_requests, app) > 2 for app in cluster.apps])
    # The worker delivered ann's mail: a new follower, a comment (favorites
    # notify only those who ask).
    mail = Path(cluster.env["MAILBOX_DIR"])
    await until(lambda: len(_subjects(mail, ann.email)) == 2)
    assert await run_sync(_subjects, mail, ann.email) == [
        f'{ben.username} commented on "Behind nginx"',
        f"{ben.username} now follows you",
    ]


async def test_a_write_on_one_process_is_read_on_the_other_at_once(cluster: Cluster) -> None:
    a, b = cluster.apps
    async with a.client() as on_a, b.client() as on_b:
        ann = await register(on_a)
        article = await create_article(on_a, ann, title="Version 0", tagList=["v0"])
        slug = article["slug"]
        assert (await on_b.get(f"/api/articles/{slug}")).json()["article"]["body"]
        assert "v0" in (await on_b.get("/api/tags")).json()["tags"]  # cached now
        for n in range(1, 6):
            writer, reader = (on_a, on_b) if n % 2 else (on_b, on_a)
            edit = {"article": {"body": f"Version {n}", "tagList": [f"v{n}"]}}
            response = await writer.put(f"/api/articles/{slug}", json=edit, headers=ann.headers)
            assert response.status_code == 200, response.text
            read = await reader.get(f"/api/articles/{slug}")
            assert read.json()["article"]["body"] == f"Version {n}"
            tags = (await reader.get("/api/tags")).json()["tags"]
            assert f"v{n}" in tags
            assert f"v{n - 1}" not in tags
            listed = await reader.get(f"/api/articles?author={ann.username}")
            assert listed.json()["articles"][0]["tagList"] == [f"v{n}"]


async def test_live_events_cross_processes_through_the_balancer(cluster: Cluster) -> None:
    a, b = cluster.apps
    async with cluster.client() as http:
        ann = await register(http)
        slug = (await create_article(http, ann, title="Live"))["slug"]
        channel = f"article:{slug}"
        async with (
            sse(http, f"/api/events?channels={channel}") as stream,
            socket(f"{cluster.nginx.ws_base}/api/ws") as ws,
        ):
            await ws.subscribe([channel])
            await asyncio.sleep(0.3)  # both subscriptions are registered with their hub
            # One comment written on each process: whichever process holds
            # each stream, one of the two comments came from the other.
            for app, body in ((a, "on a"), (b, "on b")):
                async with app.client() as direct:
                    await add_comment(direct, ann, slug, body)
            # A stream opened just after the article was written may also
            # get its article.created (seen here and in
            # test_events_processes): only the comments are counted.
            heard: list[str] = []
            while len(heard) < 2:
                event = await stream.next(within=5)
                if event.event == "comment.created":
                    heard.append(event.data["data"]["comment"]["body"])
            said: list[str] = []
            while len(said) < 2:
                message = await ws.event(within=5)
                if message["event"] == "comment.created":
                    said.append(message["data"]["comment"]["body"])
    assert sorted(heard) == sorted(said) == ["on a", "on b"]


async def test_a_rolling_restart_fails_no_request(cluster: Cluster) -> None:
    async with cluster.client() as http:
        ann = await register(http)
        readers = [await register(http) for _ in range(4)]
        slug = (await create_article(http, ann, title="Steady"))["slug"]
    failures: list[str] = []
    done = asyncio.Event()
    counts = [0]

    async def client_loop(reader: Account) -> None:
        # Reads and writes, as a front end sends them; writes are never
        # retried by nginx once sent, so this also proves the drain. A new
        # connection each: a reload closes nginx's idle client connections,
        # and a request sent on one as it closes is the client's to retry
        # (browsers do; httpx does not), not a failure of the restart.
        async with cluster_client(cluster.nginx) as http:
            n = 0
            while not done.is_set():
                n += 1
                calls = [
                    http.get(f"/api/articles/{slug}", headers=reader.headers),
                    http.post(f"/api/articles/{slug}/favorite", headers=reader.headers),
                    http.delete(f"/api/articles/{slug}/favorite", headers=reader.headers),
                    http.post(
                        f"/api/articles/{slug}/comments",
                        json={"comment": {"body": f"comment {n}"}},
                        headers=reader.headers,
                    ),
                    http.get("/api/tags"),
                ]
                for call in calls:
                    try:
                        response = await call
                    except httpx.HTTPError as exc:
                        failures.append(repr(exc))
                        continue
                    counts[0] += 1
                    if response.status_code >= 400:
                        failures.append(f"{response.status_code} {response.text}")
                await asyncio.sleep(0.02)  # steady traffic, not a load test

    loops = [asyncio.create_task(client_loop(reader)) for reader in readers]
    try:
        await asyncio.sleep(0.5)
        before = counts[0]
        # One of the two, as a rolling restart takes each in turn.
        await asyncio.to_thread(cluster.restart, 0)
        assert counts[0] > before  # requests kept flowing while it restarted
        served_before = await run_sync(_served_requests, cluster.apps[0])
        await asyncio.sleep(1)
    finally:
        done.set()
        await asyncio.gather(*loops)
    assert failures == []
    assert counts[0] > 100
    # The restarted process is back in the rotation: it served requests since.
    assert await run_sync(_served_requests, cluster.apps[0]) > served_before


def _access_lines(app: Served, route: str) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in app.process.output().splitlines() if line[:1] == "{"]
    return [x for x in lines if x["logger"] == "asyncpress.access" and x["route"] == route]


def _series(text: str, name: str) -> dict[str, float]:
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name)
    }


async def test_metrics_through_the_balancer_sum_every_worker(
    database_url: str, tmp_path: Path, redis_server: RedisServer
) -> None:
    """``serve --workers 2`` behind nginx: whichever worker answers a scrape,
    the HTTP counts are the sum over both workers."""
    await asyncio.to_thread(lambda: asyncio.run(empty_database(database_url)))
    app = await asyncio.to_thread(
        Served, database_url, tmp_path, "two-workers", workers="2", REDIS_URL=redis_server.url
    )
    (tmp_path / "nginx").mkdir()
    nginx = NginxServer(tmp_path / "nginx", [app.port])
    try:
        await asyncio.to_thread(nginx.start)
        # Fresh connections straight to the app, many at once, until the
        # kernel has handed some to each worker.
        limits = httpx.Limits(max_keepalive_connections=0)
        requests = 0
        async with httpx.AsyncClient(
            base_url=app.base, limits=limits, verify=TLS, timeout=10
        ) as direct:
            for _ in range(30):
                answers = await asyncio.gather(*(direct.get("/api/tags") for _ in range(40)))
                assert {a.status_code for a in answers} == {200}
                requests += len(answers)
                workers = await asyncio.to_thread(_access_lines, app, "/api/tags")
                if len({line["pid"] for line in workers}) == 2:
                    break
        assert len({line["pid"] for line in workers}) == 2  # both served some
        counted_as = 'asyncpress_http_requests_total{method="GET",route="/api/tags",status="200"}'
        timed_as = 'asyncpress_http_request_duration_seconds_count{method="GET",route="/api/tags"}'
        async with cluster_client(nginx) as http:
            for _ in range(6):  # whichever worker nginx reaches
                await asyncio.sleep(0.3)
                scrape = (await http.get("/metrics")).text
                assert _series(scrape, counted_as)[counted_as] == requests
                assert _series(scrape, timed_as)[timed_as] == requests
        assert "asyncpress_event_loop_lag_seconds_bucket" in scrape
    finally:
        await asyncio.to_thread(nginx.stop)
        await asyncio.to_thread(app.process.stop, 30)


def cluster_client(nginx: NginxServer) -> httpx.AsyncClient:
    # A new connection per request: nginx's workers spread them too.
    return httpx.AsyncClient(
        base_url=nginx.base,
        limits=httpx.Limits(max_keepalive_connections=0),
        verify=TLS,
        timeout=10,
    )
