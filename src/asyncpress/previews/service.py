"""Previews: stored per URL (shared by every process), refreshed when stale.

Reads and writes use short sessions of their own; no connection is held
while the pages are fetched.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from asyncpress.core.db.base import utcnow
from asyncpress.core.db.bulk import upsert
from asyncpress.core.db.engine import begin_write
from asyncpress.previews.fetch import Fetcher
from asyncpress.previews.models import LinkPreview, url_key_of
from asyncpress.previews.ssrf import PreviewFailed

log = logging.getLogger(__name__)

MAX_LINKS = 20
# Brackets are allowed (an IPv6 host is bracketed); an unbalanced closing one
# is Markdown's (``[http://x]``) and is cut off below.
_URL = re.compile(r"https?://[^\s<>\"'`)]+", re.IGNORECASE)

Preview = dict[str, str | None]


@dataclass(frozen=True, slots=True)
class Failure:
    url: str
    status: int
    error: str


def _trim(url: str) -> str:
    url = url.rstrip(".,;:!?")
    while url.endswith("]") and url.count("]") > url.count("["):
        url = url[:-1].rstrip(".,;:!?")
    return url


def links_in(text: str) -> list[str]:
    """The http(s) URLs in ``text``, in order, without repeats, at most 20."""
    found: list[str] = []
    for match in _URL.finditer(text):
        url = _trim(match.group(0))
        if url not in found:
            found.append(url)
        if len(found) == MAX_LINKS:
            break
    return found


class Previews:
    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], fetcher: Fetcher, max_age_s: float
    ) -> None:
        self.sessionmaker = sessionmaker
        self.fetcher = fetcher
        self.max_age = timedelta(seconds=max_age_s)

    async def _stored(self, urls: list[str], now: datetime) -> dict[str, Preview]:
        async with self.sessionmaker() as session:
            rows = (
                await session.execute(
                    select(LinkPreview).where(
                        LinkPreview.url_key.in_([url_key_of(url) for url in urls]),
                        LinkPreview.fetched_at >= now - self.max_age,
                    )
                )
            ).scalars()
            return {row.url: _as_dict(row) for row in rows}

    async def _store(self, previews: list[Preview], now: datetime) -> None:
        if not previews:
            return
        # Sorted, so that concurrent writers of the same URLs (a background
        # warm-up and a read) take row locks in one order and cannot deadlock.
        rows = sorted(
            ({"url_key": url_key_of(str(p["url"])), **p, "fetched_at": now} for p in previews),
            key=lambda r: str(r["url_key"]),
        )
        async with self.sessionmaker() as session:
            await begin_write(session)
            await upsert(session, LinkPreview, rows, "url_key")
            await session.commit()

    async def one(self, url: str) -> Preview:
        """A preview of ``url``, stored or fetched now. Raises the fetch errors."""
        now = utcnow()
        stored = await self._stored([url], now)
        if url in stored:
            return stored[url]
        preview = await self.fetcher.preview(url)
        await self._store([{**preview, "url": url}], now)
        return {**preview, "url": url}

    async def many(self, urls: list[str]) -> tuple[list[Preview], list[Failure]]:
        """Previews of ``urls`` (fetched concurrently where not stored), and each failure.

        One link's failure, whatever it is, never costs the others theirs.
        """
        now = utcnow()
        stored = await self._stored(urls, now)
        missing = [u for u in urls if u not in stored]
        fetched: dict[str, Preview] = {}
        failed: dict[str, Failure] = {}

        async def fetch(url: str) -> None:
            try:
                fetched[url] = {**(await self.fetcher.preview(url)), "url": url}
            except PreviewFailed as exc:
                log.info("no preview for %s: %s", url, exc)
                failed[url] = Failure(url, exc.status, str(exc))

        async with asyncio.TaskGroup() as group:
            for url in missing:
                group.create_task(fetch(url))
        await self._store(list(fetched.values()), now)
        previews = [found for u in urls if (found := stored.get(u) or fetched.get(u))]
        return previews, [failed[u] for u in urls if u in failed]

    async def warm(self, text: str) -> None:
        """Fetch and store the previews of the links in ``text`` (after a write)."""
        urls = links_in(text)
        if urls:
            await self.many(urls)


def _as_dict(row: LinkPreview) -> Preview:
    return {
        "url": row.url,
        "title": row.title,
        "description": row.description,
        "image": row.image,
        "site_name": row.site_name,
    }
