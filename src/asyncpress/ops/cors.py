"""What the API tells browsers about other origins (CORS).

The policy only: the outer layer (``ops.request_id``) applies it, since it
already edits every response's headers; a layer of its own would cost a
call, a wrapped ``send`` and a parse of the request's headers on every
request (docs/benchmarks.md, sixth round).

- A **preflight** (``OPTIONS`` with ``Origin`` and
  ``Access-Control-Request-Method``) is answered here and never routed:
  200 with what may be sent, or 400 in the error envelope naming what may
  not (the origin, the method, or a header).
- Any other request from an allowed origin gets
  ``Access-Control-Allow-Origin`` (``*`` when every origin is allowed) and
  may read ``X-Request-ID``.
- Every response carries ``Vary: Origin``: what it says to browsers
  depends on that header, and a shared cache must not hand one origin's
  answer to another.

Tokens travel in a header, not a cookie, so credentials mode is never
granted.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from asyncpress.core.errors import error_response

Headers = list[tuple[bytes, bytes]]

# What a browser may always send (the Fetch standard's CORS-safelisted
# request headers), whatever the configuration says.
SAFELISTED = ("accept", "accept-language", "content-language", "content-type")

VARY = (b"vary", b"Origin")


class Cors:
    def __init__(
        self,
        origins: Iterable[str],
        methods: Iterable[str],
        headers: Iterable[str],
        expose: Iterable[str],
        max_age_s: int,
    ) -> None:
        allowed = tuple(origins)
        self.any_origin = "*" in allowed
        self.origins = frozenset(allowed)
        self.methods = frozenset(m.upper() for m in methods)
        self.headers = frozenset((*SAFELISTED, *(h.lower() for h in headers)))
        expose_value = ", ".join(expose).encode("latin-1")
        self._any = [(b"access-control-allow-origin", b"*")]
        self._expose = [(b"access-control-expose-headers", expose_value)] if expose_value else []
        self._preflight = [
            (b"access-control-allow-methods", ", ".join(sorted(self.methods)).encode()),
            (b"access-control-allow-headers", ", ".join(sorted(self.headers)).encode()),
            (b"access-control-max-age", str(max_age_s).encode()),
        ]

    def allows(self, origin: str) -> bool:
        return self.any_origin or origin in self.origins

    def _allow_origin(self, origin: str) -> Headers:
        if self.any_origin:
            return self._any
        return [(b"access-control-allow-origin", origin.encode("latin-1"))]

    def response_headers(self, origin: str | None) -> Headers:
        """The headers a response to a request with this ``Origin`` (or none) carries."""
        if origin is None or not self.allows(origin):
            return [VARY]
        return [*self._allow_origin(origin), *self._expose, VARY]

    def preflight(self, origin: str, method: str, requested: str | None) -> ASGIApp:
        """The answer to a preflight from ``origin`` for ``method`` with ``requested`` headers.

        Its CORS headers but ``Vary``, which the layer adds to every response.
        """
        refused: dict[str, list[str]] = {}
        if not self.allows(origin):
            refused["origin"] = [f"{origin} may not call this API"]
        if method.upper() not in self.methods:
            refused["method"] = [f"{method} is not allowed"]
        names = [h.strip().lower() for h in (requested or "").split(",") if h.strip()]
        unknown = [name for name in names if name not in self.headers]
        if unknown:
            refused["headers"] = [f"{', '.join(unknown)} may not be sent"]
        if refused:
            return error_response(400, refused)
        return _Preflight([*self._allow_origin(origin), *self._preflight])


class _Preflight:
    """An empty 200 with the preflight's headers."""

    def __init__(self, headers: Headers) -> None:
        self.headers = [*headers, (b"content-length", b"0")]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.headers})
        await send({"type": "http.response.body", "body": b""})
