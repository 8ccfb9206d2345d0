"""The connection pool serves waiters in order and loses no connection."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy
from sqlalchemy import exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool

from asyncpress.fast.pool import FairAsyncPool


def _engine(path: Path, poolclass: type[AsyncAdaptedQueuePool], wait_s: float) -> AsyncEngine:
    return create_async_engine(
        f"sqlite+aiosqlite:///{path}",
        poolclass=poolclass,
        pool_size=1,
        max_overflow=0,
        pool_timeout=wait_s,
    )


@pytest.fixture
async def one_connection(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = _engine(tmp_path / "pool.db", FairAsyncPool, 2.0)
    yield engine
    await engine.dispose()


def version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".")[:3] if part.isdigit())


async def _queue_behind(
    engine: AsyncEngine, order: list[str]
) -> tuple[asyncio.Task[None], AsyncConnection]:
    """Hold the only connection and start a task that waits for it."""
    held = await engine.connect()

    async def waiter() -> None:
        async with engine.connect():
            order.append("waiter")

    task = asyncio.create_task(waiter())
    await asyncio.sleep(0.05)  # the task is now waiting in the pool
    return task, held


# SQLAlchemy's own pool is the baseline. Its queue lets a newcomer overtake a
# waiter from 2.1.5 on; before, it happened to serve the waiter first. The fair
# pool must serve the waiter first on every version declared (make test-lowest).
STOCK_POOL_FIRST = "newcomer" if version_tuple(sqlalchemy.__version__) >= (2, 1, 5) else "waiter"


@pytest.mark.parametrize(
    ("poolclass", "first"),
    [(FairAsyncPool, "waiter"), (AsyncAdaptedQueuePool, STOCK_POOL_FIRST)],
)
async def test_a_newcomer_does_not_overtake_a_waiter(
    tmp_path: Path, poolclass: type[AsyncAdaptedQueuePool], first: str
) -> None:
    engine = _engine(tmp_path / "pool.db", poolclass, 2.0)
    order: list[str] = []
    try:
        task, held = await _queue_behind(engine, order)
        await held.close()
        async with engine.connect():  # asks before the waiter has run again
            order.append("newcomer")
        await task
    finally:
        await engine.dispose()
    assert order[0] == first
    assert sorted(order) == ["newcomer", "waiter"]


async def test_a_connection_handed_to_a_cancelled_waiter_is_passed_on(
    one_connection: AsyncEngine,
) -> None:
    order: list[str] = []
    task, held = await _queue_behind(one_connection, order)
    await held.close()  # handed to the waiting task...
    task.cancel()  # ...which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await task
    async with asyncio.timeout(1.0), one_connection.connect():  # not lost: no pool timeout
        order.append("next")
    assert order == ["next"]
    assert one_connection.pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_a_waiter_that_times_out_leaves_the_line(tmp_path: Path) -> None:
    engine = _engine(tmp_path / "pool.db", FairAsyncPool, 0.1)
    try:
        held = await engine.connect()
        with pytest.raises(exc.TimeoutError):
            await engine.connect()
        await held.close()
        async with engine.connect():  # the timed-out waiter holds no place
            pass
        assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    finally:
        await engine.dispose()
