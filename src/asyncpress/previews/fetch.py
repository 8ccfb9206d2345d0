"""Fetching a page for its preview, safely.

Only http(s); the host is resolved and every address vetted (see ssrf.py);
the connection goes to the vetted address itself (Host header and TLS SNI
carry the name), so DNS cannot change between the check and the connect;
each redirect (at most 5) is vetted again; at most 1 MiB is read; each
request has httpx's timeouts and the whole fetch an ``asyncio.timeout``.

Every way a link can fail ends as a :class:`PreviewFailed` with the status
the client is told: 422 for a URL we will not or cannot fetch (syntax, port,
IDNA, a host that does not resolve, a refused address), 502 for an upstream
that answered badly or not at all, 504 past the deadline.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from urllib.parse import urljoin

import httpx
from anyio.to_thread import run_sync

from asyncpress.previews.parse import preview_of
from asyncpress.previews.ssrf import PreviewFailed, Refused, system_resolve, vet

MAX_REDIRECTS = 5
MAX_BYTES = 1024 * 1024

Resolver = Callable[[str, int], Awaitable[list[str]]]


class UpstreamFailed(PreviewFailed):
    """The upstream answered, but not with a page we can use, or not at all (502)."""

    status = 502


class TimedOut(PreviewFailed):
    """No page within the timeouts or the deadline (504)."""

    status = 504


def parse_url(text: str) -> httpx.URL:
    """``text`` as an http(s) URL with a host and a real port, or Refused."""
    try:
        url = httpx.URL(text)
        host, port = url.host, url.port
    except (httpx.InvalidURL, ValueError) as exc:  # ValueError: IDNA's UnicodeError too
        raise Refused("is not a valid URL") from exc
    if url.scheme not in {"http", "https"}:
        raise Refused("only http and https URLs can be previewed")
    if not host:
        raise Refused("the URL has no host")
    if port is not None and not 0 < port < 65536:
        raise Refused("the URL's port is out of range")
    return url


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
        """Raises PreviewFailed: Refused (422), UpstreamFailed (502) or TimedOut (504)."""
        try:
            async with asyncio.timeout(self.deadline_s):
                final_url, html = await self._fetch_html(url)
        except PreviewFailed:
            raise
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise TimedOut("the page did not answer in time") from exc
        except httpx.HTTPError as exc:
            raise UpstreamFailed(f"could not be fetched ({type(exc).__name__})") from exc
        except (OSError, ValueError, OverflowError) as exc:
            # What a hostile URL may still provoke below httpx (a socket or
            # codec error): the upstream could not be reached.
            raise UpstreamFailed(f"could not be fetched ({type(exc).__name__})") from exc
        return await run_sync(preview_of, final_url, html)

    async def _target(self, url: httpx.URL) -> str:
        port = url.port or (443 if url.scheme == "https" else 80)
        addresses = await self.resolver(url.host, port)
        if url.host in self.allowed_hosts:
            if not addresses:
                raise Refused(f"{url.host} does not resolve")
            return addresses[0]
        return vet(url.host, addresses)

    async def _fetch_html(self, start: str) -> tuple[str, str]:
        url = parse_url(start)
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
                    url = parse_url(urljoin(str(url), location))
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
