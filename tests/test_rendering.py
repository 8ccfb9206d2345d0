from __future__ import annotations

import asyncio
from html.parser import HTMLParser

import httpx
import pytest
from fastapi import FastAPI

from asyncpress.core.config import Settings
from asyncpress.rendering.pool import Renderer
from tests.factories import create_article, register
from tests.support.app import make_settings, wired

# SQLite and PostgreSQL only: rendering happens in worker processes, on what one row read returns.
pytestmark = pytest.mark.above_the_database


class _Tags(HTMLParser):
    """The tags and attributes a browser would act on (escaped text is not one)."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, dict(attrs)))


def executable_parts(html: str) -> list[str]:
    parser = _Tags()
    parser.feed(html)
    bad = []
    for tag, attrs in parser.found:
        if tag in {"script", "iframe", "object", "embed", "style"}:
            bad.append(tag)
        for name, value in attrs.items():
            if name.startswith("on"):
                bad.append(f"{tag}.{name}")
            if name in {"href", "src"} and not (value or "").startswith(
                ("http:", "https:", "mailto:")
            ):
                bad.append(f"{tag}.{name}={value}")
    return bad


class TestRender:
    async def test_markdown_becomes_html(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            "/api/render",
            json={"markdown": "# Title\n\nSome *emphasis* and [a link](https://x.example)."},
        )
        assert response.status_code == 200
        html = response.json()["html"]
        assert "<h1>Title</h1>" in html
        assert "<em>emphasis</em>" in html
        assert '<a href="https://x.example" rel="noopener noreferrer nofollow">a link</a>' in html

    @pytest.mark.parametrize(
        "markdown",
        [
            "<script>alert(1)</script>",
            "[x](javascript:alert(1))",
            "[x](JaVaScRiPt:alert(1))",
            '<img src=x onerror="alert(1)">',
            "![x](data:text/html;base64,PHNjcmlwdD4=)",
            '<a href="https://ok.example" onclick="evil()">x</a>',
            "<iframe src='https://evil.example'></iframe>",
            "[x](vbscript:msgbox)",
        ],
    )
    async def test_nothing_executable_survives(
        self, client: httpx.AsyncClient, markdown: str
    ) -> None:
        html = (await client.post("/api/render", json={"markdown": markdown})).json()["html"]
        assert executable_parts(html) == [], html

    def test_the_checker_sees_executable_html(self) -> None:
        bad = '<a href="javascript:x" onclick="y">a</a><script></script><img src="data:z">'
        assert executable_parts(bad) == [
            "a.href=javascript:x",
            "a.onclick",
            "script",
            "img.src=data:z",
        ]

    async def test_too_long_is_refused(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/api/render", json={"markdown": "x" * (100 * 1024 + 1)})
        assert response.status_code == 422
        assert response.json() == {
            "errors": {"markdown": ["is too long (maximum is 102400 characters)"]}
        }

    async def test_article_body_as_html(self, client: httpx.AsyncClient) -> None:
        alice = await register(client)
        slug = (await create_article(client, alice, body="**bold** <script>x</script>"))["slug"]
        html = (await client.get(f"/api/articles/{slug}/html")).json()["html"]
        assert "<strong>bold</strong>" in html
        assert "<script" not in html
        assert (await client.get("/api/articles/nope/html")).status_code == 404


class TestRenderPool:
    """Renders run in worker processes with a deadline and a bounded queue."""

    @pytest.fixture
    def settings(self, database_url: str) -> Settings:
        return make_settings(database_url, render_timeout_s=0.3, render_queue=2)

    async def test_a_render_past_its_deadline_is_422_and_the_pool_recovers(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        renderer = wired(app, Renderer)
        response = await client.post("/api/render", json={"markdown": "[" * 100_000})
        assert response.status_code == 422
        assert response.json() == {"errors": {"markdown": ["takes longer than 0.3 s to render"]}}
        assert renderer._generation == 1  # the runaway worker was ended with its pool
        ok = await client.post("/api/render", json={"markdown": "*fine*"})
        assert ok.json() == {"html": "<p><em>fine</em></p>\n"}

    async def test_renders_in_flight_when_the_pool_restarts_are_told_to_retry(
        self, app: FastAPI
    ) -> None:
        transport = httpx.ASGITransport(app=app)  # no contract hook: 503 is the point
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as plain:
            heavy = [plain.post("/api/render", json={"markdown": "[" * 100_000}) for _ in range(2)]
            statuses = sorted(r.status_code for r in await asyncio.gather(*heavy))
        # One passes its deadline and restarts the pool; the other waited on that
        # pool: 422 for the first, and a 422 or a 503 to retry for the second.
        assert statuses[0] == 422
        assert statuses[1] in (422, 503)

    async def test_a_full_queue_is_503_with_retry_after(self, app: FastAPI) -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as plain:
            # Two slots (one process, RENDER_QUEUE=2): the third render waits for none.
            heavy = [
                asyncio.create_task(plain.post("/api/render", json={"markdown": "[" * 50_000}))
                for _ in range(2)
            ]
            slots = wired(app, Renderer)._slots
            async with asyncio.timeout(5):
                while not slots.locked():  # noqa: ASYNC110 - both renders hold their slots
                    await asyncio.sleep(0.005)
            refused = await plain.post("/api/render", json={"markdown": "x"})
            await asyncio.gather(*heavy)
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "1"
        assert refused.json() == {
            "errors": {"markdown": ["the renderer is busy; try again shortly"]}
        }

    async def test_threads_are_still_an_option(self, threads_only: Settings) -> None:
        renderer = Renderer(threads_only)
        assert await renderer.html("*in a thread*") == "<p><em>in a thread</em></p>\n"
        assert renderer._pool is None  # no process was started

    @pytest.fixture
    def threads_only(self, database_url: str) -> Settings:
        return make_settings(database_url, render_processes=0)
