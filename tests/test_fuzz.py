"""schemathesis over /openapi.json, against a served process, on each backend.

All of its checks (no server error, documented statuses, response schemas,
content types and headers, auth, positive and negative data), every
operation, a fixed seed, signed in. tests/support/schemathesis.toml lists
the two exceptions and why. A failure prints schemathesis' report, with a
curl line to reproduce each finding.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import httpx
from servers.postgres import empty_database

from tests.support.http import TLS
from tests.support.live import Served

CONFIG = Path(__file__).parent / "support" / "schemathesis.toml"
# Per backend, schemathesis takes one core for its whole budget (MAX_TIME_S):
# the suite's largest CPU cost, sized to keep `make test` within 4 minutes
# (48 s in all: 24 s on each of two backends before MariaDB, 16 s on three).
EXAMPLES_PER_OPERATION = 4
MAX_TIME_S = 16
SEED = 20261126


def test_the_api_keeps_its_openapi_contract_under_fuzzing(
    database_url: str, tmp_path: Path
) -> None:
    asyncio.run(empty_database(database_url))
    # Event streams end by their lifetime: short here, so the fuzzer's streams end.
    served = Served(
        database_url, tmp_path, "fuzz", EVENTS_MAX_LIFETIME_S="0.5", LOG_LEVEL="WARNING"
    )
    try:
        _fuzz(served.base, tmp_path)
    finally:
        served.process.stop(timeout=15)


def _fuzz(server: str, tmp_path: Path) -> None:
    user = {"username": "fuzzer", "email": "fuzzer@example.com", "password": "password1"}
    token = httpx.post(f"{server}/api/users", json={"user": user}, verify=TLS, timeout=10).json()[
        "user"
    ]["token"]
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "--config-file",
        str(CONFIG),
        "run",
        f"{server}/openapi.json",
        "--max-examples",
        str(EXAMPLES_PER_OPERATION),
        # One worker: schemathesis is CPU-bound under the GIL (a second thread
        # adds no speed), and two threads parsing lambdas' source at once hit a
        # CPython 3.11 race ("AST constructor recursion depth mismatch",
        # SystemError inside hypothesis), which failed a CI run.
        "--workers",
        "1",
        "--seed",
        str(SEED),
        "--header",
        f"Authorization: Token {token}",
        "--request-timeout",
        "10",
        "--max-time",
        str(MAX_TIME_S),
        "--no-color",
        "--continue-on-failure",
        "--report-dir",
        str(tmp_path / "reports"),
    ]
    done = subprocess.run(  # noqa: S603 - our own command line
        # Run from the temporary folder: schemathesis keeps a cache in its
        # working directory, which must not land in the checkout.
        command,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=tmp_path,
    )
    (tmp_path / "schemathesis.txt").write_text(done.stdout + done.stderr)
    report = done.stdout[-20000:] + done.stderr[-3000:]
    assert done.returncode == 0, report
    assert "0 failures" in report or " passed" in report, report
