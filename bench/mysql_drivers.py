"""asyncmy against aiomysql, side by side, through SQLAlchemy as asyncpress uses it.

The choice of MySQL/MariaDB driver (docs/operations.md): a throw-away
MariaDB server pinned to CPU 1 and this process to CPU 0; for each driver an
engine with asyncpress's pool settings, 16 concurrent tasks, and two loads:

- ``read``: one row by primary key (a profile's shape: a user row), the
  request path of one-row reads;
- ``write``: a transaction inserting a favorite-sized row and committing,
  the shape of the write use cases (with ``innodb_flush_log_at_trx_commit=1``).

Rounds alternate between the drivers (ABBA), the medians and their ratio go
to stdout and ``bench/results/mysql-drivers-<timestamp>.json``.

    python -m bench.mysql_drivers               # 4 rounds of 3 s per load
    python -m bench.mysql_drivers --rounds 6 --seconds 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from servers.mariadb import MariaDBServer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

RESULTS = Path(__file__).resolve().parent / "results"
DRIVERS = ("asyncmy", "aiomysql")
TASKS = 16

_SCHEMA = (
    "CREATE TABLE people (id INT PRIMARY KEY, username VARCHAR(64) NOT NULL,"
    " email VARCHAR(254) NOT NULL, bio TEXT NOT NULL, image VARCHAR(2048) NULL,"
    " created_at DATETIME(6) NOT NULL)",
    "CREATE TABLE marks (id BIGINT AUTO_INCREMENT PRIMARY KEY, person_id INT NOT NULL,"
    " made_at DATETIME(6) NOT NULL)",
)


def _engine(server: MariaDBServer, driver: str) -> AsyncEngine:
    return create_async_engine(
        server.url("drivers", driver=f"mysql+{driver}"),
        pool_size=TASKS,
        max_overflow=0,
        pool_pre_ping=True,
        isolation_level="READ COMMITTED",
    )


async def _prepare(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        for statement in _SCHEMA:
            await connection.exec_driver_sql(statement)
        now = datetime.now(UTC).replace(tzinfo=None)
        await connection.execute(
            text(
                "INSERT INTO people (id, username, email, bio, image, created_at)"
                " VALUES (:id, :u, :e, 'a bio', NULL, :t)"
            ),
            [
                {"id": n, "u": f"user{n}", "e": f"user{n}@example.com", "t": now}
                for n in range(1000)
            ],
        )


async def _load(engine: AsyncEngine, kind: str, seconds: float) -> float:
    """Operations per second of ``TASKS`` tasks for ``seconds``."""
    read = text("SELECT id, username, email, bio, image, created_at FROM people WHERE id = :id")
    write = text("INSERT INTO marks (person_id, made_at) VALUES (:id, :t)")
    done = 0
    stop = time.perf_counter() + seconds

    async def task(seed: int) -> None:
        nonlocal done
        n = seed
        while time.perf_counter() < stop:
            n = (n * 7 + 13) % 1000
            if kind == "read":
                async with engine.connect() as connection:
                    (await connection.execute(read, {"id": n})).one()
            else:
                async with engine.begin() as connection:
                    await connection.execute(
                        write, {"id": n, "t": datetime.now(UTC).replace(tzinfo=None)}
                    )
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(task(seed) for seed in range(TASKS)))
    return done / (time.perf_counter() - started)


async def _measure(server: MariaDBServer, rounds: int, seconds: float) -> dict[str, Any]:
    engines = {driver: _engine(server, driver) for driver in DRIVERS}
    await _prepare(engines[DRIVERS[0]])
    rates: dict[str, dict[str, list[float]]] = {
        kind: {driver: [] for driver in DRIVERS} for kind in ("read", "write")
    }
    try:
        for kind in rates:
            for driver in DRIVERS:  # warm each pool before measuring
                await _load(engines[driver], kind, 0.5)
            for n in range(rounds):
                order = DRIVERS if n % 2 == 0 else tuple(reversed(DRIVERS))
                for driver in order:
                    rates[kind][driver].append(await _load(engines[driver], kind, seconds))
    finally:
        for engine in engines.values():
            await engine.dispose()
    summary: dict[str, Any] = {}
    for kind, by_driver in rates.items():
        medians = {driver: statistics.median(values) for driver, values in by_driver.items()}
        summary[kind] = {
            "per_second": {d: round(v, 1) for d, v in medians.items()},
            "rounds": {d: [round(v, 1) for v in values] for d, values in by_driver.items()},
            "asyncmy_over_aiomysql": round(medians["asyncmy"] / medians["aiomysql"], 3),
        }
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    server = MariaDBServer.start(durable=True)
    try:
        server.create_database("drivers")
        server.pin({1})
        os.sched_setaffinity(0, {0})
        summary = asyncio.run(_measure(server, args.rounds, args.seconds))
    finally:
        server.stop()
    record = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "tasks": TASKS,
        "rounds": args.rounds,
        "seconds": args.seconds,
        **summary,
    }
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H%M%SZ")
    (RESULTS / f"mysql-drivers-{stamp}.json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
