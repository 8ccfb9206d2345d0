from __future__ import annotations

from html.parser import HTMLParser

import httpx
import pytest

from tests.factories import create_article, register


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
