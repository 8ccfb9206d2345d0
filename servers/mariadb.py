"""A throw-away MariaDB server on 127.0.0.1 for the test session and benchmarks.

Started from Debian's ``mariadb-server`` binaries: ``mariadb-install-db`` makes
a data directory in a temporary folder, ``mariadbd`` serves it on a free port
and on a socket in that folder. An ``asyncpress`` account with a password is
made through the socket, as the tests reach the server over TCP like any
deployment would.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from servers.postgres import free_port

USER = "asyncpress"
PASSWORD = "asyncpress"


def find_binary(name: str) -> str:
    for folder in ("/usr/sbin", "/usr/bin"):
        candidate = Path(folder) / name
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    raise RuntimeError(f"{name} not found: install the 'mariadb-server' package")


def asyncmy_args(url: str) -> dict[str, Any]:
    """asyncmy's connect arguments for a ``mysql+asyncmy://`` URL."""
    parts = urlsplit(url)
    return {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 3306,
        "user": unquote(parts.username or ""),
        "password": unquote(parts.password or ""),
        "db": parts.path.lstrip("/"),
        "charset": "utf8mb4",
    }


@dataclass
class MariaDBServer:
    root: Path
    port: int
    process: subprocess.Popen[bytes]

    @property
    def socket(self) -> Path:
        return self.root / "mariadb.sock"

    def url(self, database: str, driver: str = "mysql+asyncmy") -> str:
        return f"{driver}://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{database}?charset=utf8mb4"

    def sql(self, statement: str) -> str:
        """Run SQL as the server's root account, through the socket."""
        done = subprocess.run(  # noqa: S603
            [find_binary("mariadb"), f"--socket={self.socket}", "-uroot", "-N", "-e", statement],
            check=True,
            capture_output=True,
            text=True,
        )
        return done.stdout

    def create_database(self, name: str) -> None:
        self.sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")

    @classmethod
    def start(cls, *, durable: bool = False) -> MariaDBServer:
        """A new server; ``durable`` keeps every commit flushed (benchmarks)."""
        root = Path(tempfile.mkdtemp(prefix="asyncpress-mariadb-"))
        (root / "tmp").mkdir()
        as_root = os.geteuid() == 0
        user = ["--user=root"] if as_root else []
        installed = subprocess.run(  # noqa: S603
            [
                find_binary("mariadb-install-db"),
                *user,
                f"--datadir={root / 'data'}",
                # Its own: concurrent installs (one per test worker) name
                # their temporary tables alike in a shared /tmp and fail.
                f"--tmpdir={root / 'tmp'}",
                "--auth-root-authentication-method=socket",
                "--skip-test-db",
                "--skip-name-resolve",
            ],
            check=False,
            capture_output=True,
            text=True,
        )
        if installed.returncode != 0:
            raise RuntimeError(f"mariadb-install-db failed: {installed.stdout}{installed.stderr}")
        port = free_port()
        flush = "1" if durable else "0"
        log = (root / "server.log").open("ab")
        process = subprocess.Popen(  # noqa: S603
            [
                find_binary("mariadbd"),
                "--no-defaults",
                *user,
                f"--datadir={root / 'data'}",
                f"--socket={root / 'mariadb.sock'}",
                f"--tmpdir={root / 'tmp'}",
                f"--pid-file={root / 'mariadb.pid'}",
                f"--log-error={root / 'server.log'}",
                "--bind-address=127.0.0.1",
                f"--port={port}",
                "--skip-name-resolve",
                "--skip-log-bin",
                "--max-connections=300",
                "--innodb-buffer-pool-size=256M",
                f"--innodb-flush-log-at-trx-commit={flush}",
                f"--sync-binlog={flush}",
                "--innodb-doublewrite=0" if not durable else "--innodb-doublewrite=1",
                "--character-set-server=utf8mb4",
                "--collation-server=utf8mb4_bin",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        server = cls(root, port, process)
        server._wait_ready()
        server.sql(
            f"CREATE USER '{USER}'@'127.0.0.1' IDENTIFIED BY '{PASSWORD}';"
            f"GRANT ALL PRIVILEGES ON *.* TO '{USER}'@'127.0.0.1';"
        )
        return server

    def _wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mariadbd exited: {(self.root / 'server.log').read_text()}")
            try:
                self.sql("SELECT 1")
            except subprocess.CalledProcessError:
                time.sleep(0.1)
            else:
                return
        raise TimeoutError("mariadbd did not start within a minute")

    def pin(self, cpus: set[int]) -> None:
        """Move the server (one process, many threads) to these CPUs (benchmarks)."""
        for task in Path(f"/proc/{self.process.pid}/task").iterdir():
            os.sched_setaffinity(int(task.name), cpus)

    def stop(self) -> None:
        try:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


async def empty_mariadb(url: str) -> None:
    """Remove every row of every table the models declare, keeping the schema.

    DELETE and an AUTO_INCREMENT reset rather than TRUNCATE, which makes
    each InnoDB table again: 14 ms for the 13 tables against 25 ms. The ids
    start again at 1, as after PostgreSQL's ``RESTART IDENTITY``.
    """
    import asyncmy  # noqa: PLC0415

    from asyncpress.app.models import Base  # noqa: PLC0415 - the app's models, only here

    connection = await asyncmy.connect(**asyncmy_args(url), autocommit=True)
    try:
        async with connection.cursor() as cursor:
            for table in reversed(Base.metadata.sorted_tables):
                # The models' own table names, not input.
                await cursor.execute(f"DELETE FROM `{table.name}`")  # noqa: S608
                if table.autoincrement_column is not None:
                    await cursor.execute(f"ALTER TABLE `{table.name}` AUTO_INCREMENT = 1")
    finally:
        connection.close()
