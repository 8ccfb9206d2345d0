"""Real processes for the tests: the SMTP sink, ``asyncpress serve`` and ``worker``."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

from servers.postgres import free_port

REPO = Path(__file__).resolve().parents[1]
TEST_SECRET = "test-secret-" + "x" * 40


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


class Process:
    def __init__(
        self, args: list[str], log: Path, env: dict[str, str] | None = None, *, raw: bool = False
    ) -> None:
        """Run ``python ARGS`` (or ARGS as given, with ``raw``), output to ``log``."""
        self.log_path = log
        self._log = log.open("ab")
        self.popen = subprocess.Popen(  # noqa: S603
            args if raw else [sys.executable, *args],
            cwd=REPO,
            env={**os.environ, **(env or {})},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def kill(self) -> None:
        """kill -9: no cleanup, no goodbye."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=10)
        self._log.close()

    def wait(self, timeout: float) -> int:
        code = self.popen.wait(timeout=timeout)
        self._log.close()
        return code

    def stop(self, timeout: float = 20.0) -> int:
        if self.popen.poll() is None:
            self.popen.terminate()
        code = self.popen.wait(timeout=timeout)
        self._log.close()
        return code

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


class SmtpSink:
    def __init__(self, port: int, folder: Path, log_dir: Path) -> None:
        self.port = port
        self.folder = folder
        self.log_dir = log_dir
        self.process: Process | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self, mode: str = "accept", cpus: str | None = None) -> SmtpSink:
        """Start the sink; ``cpus`` (as taskset takes them, "1" or "0,1") pins it."""
        args = [sys.executable, "-m", "servers.smtp_sink", str(self.port), str(self.folder)]
        pin = ["taskset", "-c", cpus] if cpus is not None else []
        self.process = Process(
            [*pin, *args, "--mode", mode], self.log_dir / f"smtp-{self.port}.log", raw=True
        )
        wait_for_port(self.port)
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process = None

    def messages(self) -> list[EmailMessage]:
        found = []
        for path in sorted(self.folder.glob("*.eml")):
            with path.open("rb") as handle:
                message = BytesParser(policy=policy.default).parse(handle)
            assert isinstance(message, EmailMessage)
            found.append(message)
        return found

    def wait_for(self, count: int, timeout: float = 30.0) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.messages()
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise TimeoutError(f"{len(self.messages())} of {count} messages arrived")


class RedisServer:
    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        self.log_dir = log_dir
        self.process: Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        args = [
            binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        self.process = Process(args, self.log_dir / "redis.log", raw=True)
        wait_for_port(self.port)

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process = None
