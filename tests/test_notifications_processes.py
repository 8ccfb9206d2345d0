"""Notification failure semantics with real processes on 127.0.0.1 (PostgreSQL).

The app (``asyncpress serve``), delivery workers (``asyncpress worker``) and
the SMTP server (aiosmtpd) are separate processes, killed with SIGKILL where
the scenario says so.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from servers.postgres import empty_database, free_port
from servers.processes import TEST_SECRET, Process, SmtpSink
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import create_async_engine

from asyncpress.notifications.models import OutboxMessage
from tests.support.http import TLS

pytestmark = pytest.mark.postgres_only


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg", "postgresql").replace("ssl=", "sslmode=")


def sql(url: str, statement: str, *args: Any) -> list[Any]:
    async def run() -> list[Any]:
        connection = await asyncpg.connect(_dsn(url))
        try:
            return list(await connection.fetch(statement, *args))
        finally:
            await connection.close()

    return asyncio.run(run())


def wait_until(predicate: Any, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise TimeoutError(what)


class Cluster:
    """Builds the environment every process of one test shares."""

    def __init__(self, database_url: str, sink: SmtpSink, logs: Path) -> None:
        self.database_url = database_url
        self.sink = sink
        self.logs = logs
        self.processes: list[Process] = []
        self.serial = 0

    def env(self, **extra: str) -> dict[str, str]:
        return {
            "DATABASE_URL": self.database_url,
            "ENVIRONMENT": "production",
            "JWT_SECRET": TEST_SECRET,
            "LOG_LEVEL": "WARNING",
            "ARGON2_TIME_COST": "1",
            "ARGON2_MEMORY_KIB": "64",
            "SMTP_URL": self.sink.url,
            "OUTBOX_SWEEP_S": "0.2",
            "NOTIFY_BACKOFF_BASE_S": "0.2",
            "NOTIFY_BACKOFF_MAX_S": "1",
            **extra,
        }

    def _start(self, args: list[str], **extra: str) -> Process:
        self.serial += 1
        process = Process(args, self.logs / f"proc-{self.serial}.log", self.env(**extra))
        self.processes.append(process)
        return process

    def serve(self, **extra: str) -> tuple[Process, str]:
        port = free_port()
        process = self._start(["-m", "asyncpress.cli", "serve", "--port", str(port)], **extra)
        base = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            try:
                return httpx.get(f"{base}/api/health", verify=TLS, timeout=1).status_code == 200
            except httpx.TransportError:
                assert process.popen.poll() is None, process.output()
                return False

        wait_until(healthy, what="server health")
        return process, base

    def worker(self, **extra: str) -> Process:
        return self._start(["-m", "asyncpress.cli", "worker"], **extra)

    def cli(self, *args: str, **extra: str) -> str:
        process = self._start(["-m", "asyncpress.cli", *args], **extra)
        assert process.wait(timeout=60) == 0, process.output()
        return process.output()

    def close(self) -> None:
        for process in self.processes:
            process.kill()  # also closes its log; harmless for one that already ended


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[SmtpSink]:
    server = SmtpSink(free_port(), tmp_path / "inbox", tmp_path)
    yield server
    server.stop()


@pytest.fixture
def cluster(database_url: str, sink: SmtpSink, tmp_path: Path) -> Iterator[Cluster]:
    asyncio.run(empty_database(database_url))
    group = Cluster(database_url, sink, tmp_path)
    yield group
    group.close()


def comment_on_article(base: str) -> int:
    """alice writes an article, bob comments on it. Returns the comment id."""
    with httpx.Client(base_url=f"{base}/api", verify=TLS, timeout=10) as api:
        tokens = {}
        for name in ("alice", "bob"):
            user = {"username": name, "email": f"{name}@example.com", "password": "password1"}
            tokens[name] = api.post("/users", json={"user": user}).json()["user"]["token"]
        article = {"title": "Crash test", "description": "d", "body": "b"}
        slug = api.post(
            "/articles",
            json={"article": article},
            headers={"Authorization": f"Token {tokens['alice']}"},
        ).json()["article"]["slug"]
        response = api.post(
            f"/articles/{slug}/comments",
            json={"comment": {"body": "first!"}},
            headers={"Authorization": f"Token {tokens['bob']}"},
        )
        assert response.status_code == 200
        comment_id: int = response.json()["comment"]["id"]
        return comment_id


def outbox(cluster: Cluster) -> list[Any]:
    return sql(cluster.database_url, "SELECT status, attempts, last_error FROM outbox ORDER BY id")


def test_app_killed_after_the_commit_delivers_exactly_once_after_restart(
    cluster: Cluster, sink: SmtpSink
) -> None:
    # The first app never delivers in-process: it dies with the mail still owed.
    app, base = cluster.serve(OUTBOX_IN_PROCESS="false")
    comment_on_article(base)
    assert [row["status"] for row in outbox(cluster)] == ["pending"]
    app.kill()
    sink.start()
    cluster.serve(OUTBOX_IN_PROCESS="true")
    sink.wait_for(1)
    time.sleep(1.0)  # room for a duplicate to show up, if there were one
    assert len(sink.messages()) == 1
    assert [row["status"] for row in outbox(cluster)] == ["sent"]


def test_worker_killed_mid_delivery_delivers_after_restart_with_one_recognisable_duplicate(
    cluster: Cluster, sink: SmtpSink
) -> None:
    _, base = cluster.serve(OUTBOX_IN_PROCESS="false")
    comment_on_article(base)
    sink.start("stall")  # takes the message, then never says 250
    first = cluster.worker(OUTBOX_LEASE_S="2", SMTP_TIMEOUT_S="60")
    sink.wait_for(1)
    assert [row["status"] for row in outbox(cluster)] == ["sending"]
    first.kill()
    sink.stop()
    sink.start()
    cluster.worker(OUTBOX_LEASE_S="2")
    wait_until(lambda: [r["status"] for r in outbox(cluster)] == ["sent"], what="sent")
    messages = sink.messages()
    assert len(messages) == 2  # the stalled copy, and the real delivery
    assert len({m["Message-ID"] for m in messages}) == 1


def test_smtp_refusing_for_a_while_is_retried_until_it_returns(
    cluster: Cluster, sink: SmtpSink
) -> None:
    _, base = cluster.serve(OUTBOX_IN_PROCESS="false")
    comment_on_article(base)
    cluster.worker()
    wait_until(lambda: outbox(cluster)[0]["attempts"] >= 2, what="two failed attempts")
    assert outbox(cluster)[0]["status"] in {"pending", "sending"}  # owed, not given up
    sink.start()
    wait_until(lambda: outbox(cluster)[0]["status"] == "sent", what="delivered")
    assert len(sink.messages()) == 1


def test_refused_past_the_limit_is_dead_lettered_and_can_be_retried_from_the_cli(
    cluster: Cluster, sink: SmtpSink
) -> None:
    _, base = cluster.serve(OUTBOX_IN_PROCESS="false")
    comment_id = comment_on_article(base)
    worker = cluster.worker(NOTIFY_MAX_ATTEMPTS="3", NOTIFY_BACKOFF_BASE_S="0.05")
    wait_until(lambda: outbox(cluster)[0]["status"] == "dead", what="dead letter")
    worker.stop()
    assert outbox(cluster)[0]["attempts"] == 3
    failed = cluster.cli("notifications", "failed")
    assert "comment" in failed
    assert "1 dead letter(s)" in failed
    assert "Connect" in failed or "refused" in failed.lower()
    stats = cluster.cli("notifications", "stats")
    assert "dead" in stats
    assert "re-queued 1 message(s)" in cluster.cli("notifications", "retry", "--all")
    sink.start()
    cluster.cli("worker", "--once")
    assert [row["status"] for row in outbox(cluster)] == ["sent"]
    (message,) = sink.messages()
    assert f"comment:{comment_id}" == message["X-Asyncpress-Key"]


def portable_sql(url: str, statement: str, rows: list[dict[str, Any]] | None = None) -> list[Any]:
    """Run SQL that every server backend reads alike; with ``rows``, insert them into outbox."""

    async def run() -> list[Any]:
        engine = create_async_engine(url)
        try:
            async with engine.begin() as connection:
                if rows is not None:
                    await connection.execute(insert(OutboxMessage), rows)
                    return []
                return list((await connection.exec_driver_sql(statement)).all())
        finally:
            await engine.dispose()

    return asyncio.run(run())


@pytest.mark.servers_only  # MariaDB too: FOR UPDATE SKIP LOCKED across processes
def test_two_workers_drain_a_thousand_messages_each_exactly_once(
    cluster: Cluster, sink: SmtpSink
) -> None:
    total = 1000
    now = datetime.now(UTC)
    pending = [
        {
            "idempotency_key": f"bulk:{n}",
            "kind": "follow",
            "to_email": f"r{n}@example.com",
            "payload": {"recipient": "r", "actor": "a"},
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for n in range(1, total + 1)
    ]
    portable_sql(cluster.database_url, "", pending)
    sink.start()
    started = time.monotonic()
    for _ in range(2):
        cluster.worker(OUTBOX_BATCH="50")
    wait_until(
        lambda: (
            portable_sql(cluster.database_url, "SELECT count(*) FROM outbox WHERE status = 'sent'")[
                0
            ][0]
            == total
        ),
        timeout=180,
        what="all sent",
    )
    elapsed = time.monotonic() - started
    messages = sink.wait_for(total)
    keys = Counter(str(m["X-Asyncpress-Key"]) for m in messages)
    assert len(messages) == total
    assert len(keys) == total
    assert max(keys.values()) == 1
    workers = portable_sql(
        cluster.database_url, "SELECT locked_by, count(*) FROM outbox GROUP BY locked_by"
    )
    # Informative only (timings are benchmarks' business): shown with -s.
    print(f"two workers: {total} mails in {elapsed:.1f} s; by worker: {dict(workers)}")  # noqa: T201
