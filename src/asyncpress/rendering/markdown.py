"""Markdown to safe HTML: markdown-it-py (raw HTML off), then nh3 sanitising.

CPU work: call it from a worker thread (a ``def`` route, or
``anyio.to_thread.run_sync``), never on the event loop.
"""

from __future__ import annotations

import nh3
from markdown_it import MarkdownIt

MAX_MARKDOWN_CHARS = 100 * 1024

_parser = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")

_ALLOWED_TAGS = {
    "a",
    "blockquote",
    "br",
    "code",
    "em",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "img",
    "li",
    "ol",
    "p",
    "pre",
    "strong",
    "table",
    "tbody",
    "td",
    "th",
    "thead",
    "tr",
    "ul",
}
_ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "code": {"class"},
    "th": {"style"},
    "td": {"style"},
}


def to_html(markdown: str) -> str:
    """Safe HTML: no scripts, no event handlers, links only to http(s) and mailto."""
    rendered = _parser.render(markdown)
    return nh3.clean(
        rendered,
        tags=_ALLOWED_TAGS,
        attributes=_ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )
