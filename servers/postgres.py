"""A throw-away PostgreSQL server on 127.0.0.1 for the test session.

Started from the PostgreSQL binaries with ``initdb`` and ``pg_ctl``. The
server refuses to run as root, so when the tests run as root (CI) it runs as
the ``postgres`` OS user, in a temporary directory that user owns.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import asyncpg


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_bindir() -> Path:
    configured = os.environ.get("PG_BINDIR")
    if configured:
        return Path(configured)
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if candidates:
        return Path(candidates[0]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    raise RuntimeError("PostgreSQL binaries not found: install the 'postgresql' package")


@dataclass
class PostgresServer:
    bindir: Path
    root: Path
    port: int
    as_postgres_user: bool

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, database: str, driver: str = "postgresql+asyncpg") -> str:
        # A password and an explicit ssl mode keep asyncpg from reading
        # ~/.pgpass and ~/.postgresql/* (blocking file reads) on every new
        # connection; trust auth ignores the password's value.
        query = "?ssl=disable" if "asyncpg" in driver else ""
        return f"{driver}://postgres:postgres@127.0.0.1:{self.port}/{database}{query}"

    def dsn(self, database: str) -> str:
        """A libpq-style DSN for asyncpg itself."""
        return f"postgresql://postgres:postgres@127.0.0.1:{self.port}/{database}?sslmode=disable"

    def _run(self, *args: str) -> None:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self.as_postgres_user:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, text=True)  # noqa: S603

    def psql(self, sql: str, database: str = "postgres") -> None:
        self._run(
            "psql",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-d",
            database,
            "-v",
            "ON_ERROR_STOP=1",
            "-qc",
            sql,
        )

    @classmethod
    def start(cls) -> PostgresServer:
        as_postgres_user = os.geteuid() == 0
        root = Path(tempfile.mkdtemp(prefix="asyncpress-pg-"))
        server = cls(find_bindir(), root, free_port(), as_postgres_user)
        if as_postgres_user:
            shutil.chown(root, "postgres", "postgres")
        server._run(
            "initdb",
            "-D",
            str(server.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        options = (
            f"-c listen_addresses=127.0.0.1 -p {server.port} -k {root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200"
        )
        server._run(
            "pg_ctl",
            "-D",
            str(server.data),
            "-o",
            options,
            "-l",
            str(root / "server.log"),
            "-w",
            "-t",
            "60",
            "start",
        )
        return server

    def pin(self, cpus: set[int]) -> None:
        """Move every server process to these CPUs (benchmarks).

        Backends started later are forked by the postmaster and inherit it.
        """
        marker = str(self.data).encode()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if marker in (entry / "cmdline").read_bytes():
                    os.sched_setaffinity(int(entry.name), cpus)
            except OSError:
                continue  # the process ended meanwhile
        # Auxiliary processes do not name the data directory; the postmaster's
        # children are found through its pid file.
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                if parent == postmaster:
                    os.sched_setaffinity(int(entry.name), cpus)

    def restart(self) -> None:
        """A fast restart (``pg_ctl restart -m fast``): every client connection is closed."""
        log = str(self.root / "server.log")  # else the server keeps our output pipe open
        self._run("pg_ctl", "-D", str(self.data), "-l", log, "-m", "fast", "-w", "restart")

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


async def empty_database(url: str) -> None:
    """Remove every row of every table the models declare, keeping the schema.

    For the PostgreSQL or MariaDB database the test session shares; a no-op
    on SQLite, where every test gets a fresh file.
    """
    if url.startswith(("mysql", "mariadb")):
        from servers.mariadb import empty_mariadb  # noqa: PLC0415

        await empty_mariadb(url)
        return
    if not url.startswith("postgresql"):
        return
    from asyncpress.app.models import Base  # noqa: PLC0415 - the app's models, only here

    tables = ", ".join(table.name for table in reversed(Base.metadata.sorted_tables))
    dsn = url.replace("postgresql+asyncpg", "postgresql").replace("ssl=", "sslmode=")
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    finally:
        await connection.close()
