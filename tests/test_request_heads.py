"""Request heads on ``asyncpress serve`` are bounded in size and in time (raw sockets)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.http import TLS
from tests.support.live import Served


@pytest.fixture(scope="module")
def served(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("heads")
    shutil.copyfile(sqlite_template, folder / "heads.db")
    process = Served(
        f"sqlite+aiosqlite:///{folder / 'heads.db'}",
        folder,
        "heads",
        MAX_REQUEST_HEAD_BYTES="16384",
        REQUEST_HEAD_TIMEOUT_S="1",
    )
    yield process
    process.process.stop(timeout=15)


async def _exchange(served: Served, chunks: list[bytes], pause_s: float = 0.0) -> bytes:
    """Send ``chunks`` (pausing between them), then read until the server closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    try:
        for chunk in chunks:
            writer.write(chunk)
            await writer.drain()
            if pause_s:
                await asyncio.sleep(pause_s)
        async with asyncio.timeout(10):
            return await reader.read()
    except ConnectionResetError:
        return b""
    finally:
        writer.close()
        # Closed before the test's loop ends, not left for the collector.
        with contextlib.suppress(OSError):
            await writer.wait_closed()


class TestHeadSize:
    async def test_a_huge_header_is_431_and_the_connection_closed(self, served: Served) -> None:
        head = b"GET /api/tags HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (1024 * 1024)
        answer = await _exchange(served, [head[i : i + 65536] for i in range(0, len(head), 65536)])
        assert answer.startswith(b"HTTP/1.1 431 ")
        assert b'{"errors": {"request": ["head is larger than 16384 bytes"]}}' in answer

    async def test_many_headers_adding_up_are_431(self, served: Served) -> None:
        lines = b"".join(b"X-H%d: %s\r\n" % (n, b"v" * 100) for n in range(400))
        answer = await _exchange(served, [b"GET /api/tags HTTP/1.1\r\nHost: x\r\n" + lines])
        assert answer.startswith(b"HTTP/1.1 431 ")

    async def test_a_large_body_is_not_taken_for_a_large_head(self, served: Served) -> None:
        async with httpx.AsyncClient(base_url=served.base, verify=TLS, timeout=10) as http:
            response = await http.post(
                "/api/render", json={"markdown": "x" * 90_000}, headers={"X-Ok": "v" * 8000}
            )
        assert response.status_code == 200


class TestHeadTime:
    async def test_a_trickled_head_is_408_within_the_timeout(self, served: Served) -> None:
        trickle = [b"GET /api/tags HTTP/1.1\r\n", b"Host: x\r\n", b"X-A: 1\r\n", b"X-B: 2\r\n"]
        answer = await _exchange(served, trickle, pause_s=0.4)
        assert answer.startswith(b"HTTP/1.1 408 ")

    async def test_an_idle_connection_is_closed(self, served: Served) -> None:
        assert await _exchange(served, []) == b""

    async def test_a_keep_alive_connection_is_timed_again_after_each_response(
        self, served: Served
    ) -> None:
        first = b"GET /api/tags HTTP/1.1\r\nHost: x\r\n\r\n"
        answer = await _exchange(served, [first, b"GET /api/tags HTTP/1.1\r\n"], pause_s=0.2)
        assert answer.startswith(b"HTTP/1.1 200 ")
        assert b"HTTP/1.1 408 " in answer

    async def test_many_idle_sockets_are_all_closed(self, served: Served) -> None:
        answers = await asyncio.gather(*(_exchange(served, [b"G"]) for _ in range(200)))
        assert all(a == b"" or a.startswith(b"HTTP/1.1 408 ") for a in answers)
        async with httpx.AsyncClient(base_url=served.base, verify=TLS, timeout=10) as http:
            assert (await http.get("/api/tags")).status_code == 200
