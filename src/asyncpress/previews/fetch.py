"""Fetching a page for its preview, safely.

Only http(s); the host is resolved and every address vetted (see ssrf.py);
the connection goes to the vetted address itself (Host header and TLS SNI
carry the name), so DNS cannot change between the check and the connect;
each redirect (at most 5) is vetted again; at most 1 MiB is read; each
request has httpx's timeouts and the whole fetch an ``asyncio.timeout``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from urllib.parse import urljoin

import httpx
from anyio.to_thread import run_sync

from asyncpress.previews.parse import preview_of
from asyncpress.previews.ssrf import Refused, system_resolve, vet

MAX_REDIRECTS = 5
MAX_BYTES = 1024 * 1024

Resolver = Callable[[str, int], Awaitable[list[str]]]


class UpstreamFailed(Exception):
    """The upstream answered, but not with a page we can use (502)."""


class Fetcher:
    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        deadline_s: float,
        allowed_hosts: frozenset[str] = frozenset(),
        resolver: Resolver = system_resolve,
    ) -> None:
        self.client = client
        self.deadline_s = deadline_s
        self.allowed_hosts = allowed_hosts
        self.resolver = resolver

    async def preview(self, url: str) -> dict[str, str | None]:
        """Raises Refused (422), UpstreamFailed (502) or TimeoutError (504)."""
        async with asyncio.timeout(self.deadline_s):
            final_url, html = await self._fetch_html(url)
        return await run_sync(preview_of, final_url, html)

    async def _target(self, url: httpx.URL) -> str:
        if url.scheme not in {"http", "https"}:
            raise Refused("only http and https URLs can be previewed")
        if not url.host:
            raise Refused("the URL has no host")
        port = url.port or (443 if url.scheme == "https" else 80)
        addresses = await self.resolver(url.host, port)
        if url.host in self.allowed_hosts:
            if not addresses:
                raise Refused(f"{url.host} does not resolve")
            return addresses[0]
        return vet(url.host, addresses)

    async def _fetch_html(self, start: str) -> tuple[str, str]:
        url = httpx.URL(start)
        for _ in range(MAX_REDIRECTS + 1):
            address = await self._target(url)
            host_header = url.host if url.port is None else f"{url.host}:{url.port}"
            request = self.client.build_request(
                "GET",
                url.copy_with(host=address),
                headers={"Host": host_header, "Accept": "text/html"},
                extensions={"sni_hostname": url.host},
            )
            response = await self.client.send(request, stream=True)
            try:
                if response.is_redirect:
                    location = response.headers.get("location")
                    if not location:
                        raise UpstreamFailed("redirect without a Location")
                    url = httpx.URL(urljoin(str(url), location))
                    continue
                if response.status_code >= 400:
                    raise UpstreamFailed(f"upstream answered {response.status_code}")
                kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
                if kind != "text/html":
                    raise Refused(f"is not an HTML page ({kind or 'no content type'})")
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body.extend(chunk)
                    if len(body) >= MAX_BYTES:
                        break  # the head of a page is where its metadata lives
                html = bytes(body[:MAX_BYTES]).decode(response.encoding or "utf-8", "replace")
                return str(url), html
            finally:
                await response.aclose()
        raise UpstreamFailed(f"more than {MAX_REDIRECTS} redirects")
