"""The ``asyncpress`` command, run as a user would (a real process)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from servers.postgres import free_port
from servers.processes import TEST_SECRET
from sqlalchemy import create_engine, text

import asyncpress

CLI = [sys.executable, "-m", "asyncpress.cli"]


def _run(
    *args: str, database_url: str, stdin: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        "DATABASE_URL": database_url,
        "ENVIRONMENT": "test",
        "JWT_SECRET": TEST_SECRET,
        "ARGON2_TIME_COST": "1",
        "ARGON2_MEMORY_KIB": "64",
        **env,
    }
    return subprocess.run(  # noqa: S603
        [*CLI, *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
    )


def _counts(database_url: str) -> dict[str, int]:
    sync_url = database_url.replace("+aiosqlite", "")
    engine = create_engine(sync_url)
    try:
        with engine.connect() as conn:
            return {
                table: int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())  # noqa: S608
                for table in ("users", "articles", "comments", "favorites", "follows", "tags")
            }
    finally:
        engine.dispose()


@pytest.fixture
def fresh_sqlite(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"


def test_db_upgrade_seed_and_users_create(fresh_sqlite: str) -> None:
    upgraded = _run("db", "upgrade", database_url=fresh_sqlite)
    assert upgraded.returncode == 0, upgraded.stderr
    seeded = _run(
        "seed",
        "--users",
        "12",
        "--articles",
        "40",
        "--seed",
        "3",
        "--quiet",
        database_url=fresh_sqlite,
    )
    assert seeded.returncode == 0, seeded.stderr
    counts = _counts(fresh_sqlite)
    assert counts["users"] == 12
    assert counts["articles"] == 40
    assert counts["comments"] == 60
    assert 0 < counts["favorites"] <= 20
    assert 0 < counts["follows"] <= 60
    created = _run(
        "users",
        "create",
        "--username",
        "admin",
        "--email",
        "admin@example.com",
        "--password",
        "long enough",
        database_url=fresh_sqlite,
    )
    assert created.returncode == 0, created.stderr
    assert _counts(fresh_sqlite)["users"] == 13
    again = _run(
        "users",
        "create",
        "--username",
        "ADMIN",
        "--email",
        "x@example.com",
        "--password",
        "long enough",
        database_url=fresh_sqlite,
    )
    assert again.returncode == 1
    assert "already been taken" in again.stderr


def test_seed_is_reproducible(tmp_path: Path) -> None:
    urls = [f"sqlite+aiosqlite:///{tmp_path / f'{n}.db'}" for n in range(2)]
    titles = []
    for url in urls:
        assert _run("db", "upgrade", database_url=url).returncode == 0
        assert (
            _run(
                "seed",
                "--users",
                "5",
                "--articles",
                "10",
                "--seed",
                "9",
                "--quiet",
                database_url=url,
            ).returncode
            == 0
        )
        engine = create_engine(url.replace("+aiosqlite", ""))
        with engine.connect() as conn:
            titles.append(
                conn.execute(text("SELECT title FROM articles ORDER BY id")).scalars().all()
            )
        engine.dispose()
    assert titles[0] == titles[1]
    assert len(titles[0]) == 10


def test_refuses_to_start_with_the_built_in_secret(fresh_sqlite: str) -> None:
    result = _run(
        "db",
        "upgrade",
        database_url=fresh_sqlite,
        ENVIRONMENT="production",
        JWT_SECRET="asyncpress-development-secret-do-not-use-in-production",
    )
    assert result.returncode == 2
    assert "JWT_SECRET" in result.stderr


def test_worker_writes_the_mailbox_and_mail_commands_read_it(
    fresh_sqlite: str, tmp_path: Path
) -> None:
    mailbox = str(tmp_path / "mailbox")
    assert _run("db", "upgrade", database_url=fresh_sqlite).returncode == 0
    engine = create_engine(fresh_sqlite.replace("+aiosqlite", ""))
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO outbox (idempotency_key, kind, to_email, payload, status, attempts,"
                " next_attempt_at, created_at) VALUES ('follow:2:1', 'follow',"
                " 'alice@example.com', :payload, 'pending', 0, :now, :now)"
            ),
            {"payload": '{"recipient": "alice", "actor": "bob"}', "now": "2026-01-01 00:00:00"},
        )
    engine.dispose()
    worked = _run("worker", "--once", database_url=fresh_sqlite, MAILBOX_DIR=mailbox)
    assert worked.returncode == 0, worked.stderr
    assert (tmp_path / "mailbox" / "00000001.eml").exists()
    listing = _run("mail", "ls", database_url=fresh_sqlite, MAILBOX_DIR=mailbox)
    assert "bob now follows you" in listing.stdout
    assert "alice@example.com" in listing.stdout
    shown = _run("mail", "show", "1", database_url=fresh_sqlite, MAILBOX_DIR=mailbox)
    assert "Subject: bob now follows you" in shown.stdout
    assert "/profile/bob" in shown.stdout
    assert "Message-ID: <" in shown.stdout
    missing = _run("mail", "show", "2", database_url=fresh_sqlite, MAILBOX_DIR=mailbox)
    assert missing.returncode == 1
    stats = _run("notifications", "stats", database_url=fresh_sqlite)
    assert stats.returncode == 0
    assert "sent" in stats.stdout
    retry = _run("notifications", "retry", database_url=fresh_sqlite)
    assert retry.returncode == 2  # needs an ID or --all


def test_version() -> None:
    result = _run("--version", database_url="sqlite+aiosqlite:///unused.db")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"asyncpress {asyncpress.__version__}"


# Each is one or two lines that say what is wrong and what to do, exit 2.
MISCONFIGURED = {
    "driverless-url": (
        ["db", "upgrade"],
        "postgresql://app:s3cret@db/app",
        "postgresql+asyncpg://",
    ),
    "refused": (
        ["db", "upgrade"],
        "postgresql+asyncpg://app:s3cret@127.0.0.1:{port}/app",
        "is the server running",
    ),
    "missing-folder": (
        ["db", "upgrade"],
        "sqlite+aiosqlite:///{tmp}/no/such/folder/a.db",
        "does the folder",
    ),
    "unmigrated-serve": (
        ["serve"],
        "sqlite+aiosqlite:///{tmp}/empty.db",
        "run `asyncpress db upgrade`",
    ),
    "unmigrated-seed": (
        ["seed"],
        "sqlite+aiosqlite:///{tmp}/empty.db",
        "run `asyncpress db upgrade`",
    ),
    "unmigrated-worker": (
        ["worker", "--once"],
        "sqlite+aiosqlite:///{tmp}/empty.db",
        "run `asyncpress db upgrade`",
    ),
}


@pytest.mark.parametrize("case", MISCONFIGURED, ids=list(MISCONFIGURED))
def test_a_misconfiguration_is_a_short_message(case: str, tmp_path: Path) -> None:
    args, url, expected = MISCONFIGURED[case]
    url = url.format(port=free_port(), tmp=tmp_path)  # nothing listens there
    result = _run(*args, database_url=url)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert 1 <= len(lines) <= 2, result.stderr
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert "s3cret" not in result.stderr  # a password is never printed


def test_serve_says_what_is_wrong_with_the_tracing_variables(migrated_sqlite: str) -> None:
    result = _run(
        "serve",
        "--port",
        str(free_port()),
        database_url=migrated_sqlite,
        OTEL_TRACES_EXPORTER="zipkin",
    )
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [
        "configuration error: OTEL_TRACES_EXPORTER=zipkin is not supported;"
        " use otlp, console or none"
    ]


def test_a_database_behind_the_code_is_named_with_its_revision(fresh_sqlite: str) -> None:
    assert _run("db", "upgrade", "0002", database_url=fresh_sqlite).returncode == 0
    result = _run("seed", "--quiet", database_url=fresh_sqlite)
    assert result.returncode == 2
    assert "is at revision 0002" in result.stderr
    assert "run `asyncpress db upgrade`" in result.stderr


def test_users_create_reads_a_piped_password_and_retry_names_a_missing_id(
    fresh_sqlite: str,
) -> None:
    assert _run("db", "upgrade", database_url=fresh_sqlite).returncode == 0
    args = ["users", "create", "--username", "piped", "--email", "piped@example.com"]
    created = _run(*args, database_url=fresh_sqlite, stdin="from a pipe\n")
    assert created.returncode == 0, created.stderr
    assert "Warning" not in created.stderr  # no GetPassWarning without a terminal
    engine = create_engine(fresh_sqlite.replace("+aiosqlite", ""))
    try:
        with engine.connect() as conn:
            stored = conn.execute(text("SELECT password_hash FROM users")).scalar_one()
    finally:
        engine.dispose()
    assert PasswordHasher().verify(stored, "from a pipe")

    missing = _run("notifications", "retry", "12345", database_url=fresh_sqlite)
    assert missing.returncode == 1
    assert "no dead letter with id 12345" in missing.stderr
