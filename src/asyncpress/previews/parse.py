"""Open Graph, Twitter card and <title>, from the first bytes of an HTML page."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urljoin


class _Meta(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.meta: dict[str, str] = {}
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        elif tag == "meta":
            values = dict(attrs)
            key = (values.get("property") or values.get("name") or "").strip().lower()
            content = values.get("content")
            if key and content and key not in self.meta:
                self.meta[key] = content.strip()

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title and len(self.title) < 1000:
            self.title += data


def _clip(value: str | None, limit: int) -> str | None:
    if not value:
        return None
    value = " ".join(value.split())
    return value[:limit] or None


def preview_of(url: str, html: str) -> dict[str, str | None]:
    """CPU work (an HTML parse): call from a worker thread."""
    parser = _Meta()
    parser.feed(html)
    meta = parser.meta
    image = meta.get("og:image") or meta.get("twitter:image")
    return {
        "url": url,
        "title": _clip(meta.get("og:title") or meta.get("twitter:title") or parser.title, 300),
        "description": _clip(
            meta.get("og:description")
            or meta.get("twitter:description")
            or meta.get("description"),
            1000,
        ),
        "image": _clip(urljoin(url, image), 2048) if image else None,
        "site_name": _clip(meta.get("og:site_name"), 200),
    }
