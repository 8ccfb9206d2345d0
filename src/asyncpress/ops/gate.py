"""The request gate (pure ASGI): what every request must be before routing.

- **One spelling of each route.** A trailing slash is dropped from the path
  before routing, so ``POST /api/articles/`` is served like
  ``POST /api/articles``. No redirect: behind a TLS-terminating proxy a
  redirect's ``Location`` can come back ``http://``, which browsers block.
- **No NUL characters** in the path or the query string: PostgreSQL cannot
  store them and nothing legitimate sends them (422, nothing is read).
- **Bounded bodies.** The size is counted as the body streams in, so a
  ``Content-Length`` that lies, or none at all, changes nothing; a declared
  size over the limit is refused before a byte is read. Routes that take
  large bodies (bulk import) get their own limit by path.
- **No JSON nested past any sense** (``core.json_depth``): a JSON body on a
  route with the default limit is checked once it has all arrived, before
  the route parses it (400, ``body``). Bulk import checks its own, in the
  worker thread that parses it.

One layer for the four, so a request pays for one middleware call.
"""

from __future__ import annotations

from anyio.to_thread import run_sync
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from asyncpress.core import json_depth
from asyncpress.core.errors import error_response

NUL_MESSAGE = "must not contain NUL characters"


class BodyTooLarge(HTTPException):
    """Raised from ``receive``; an HTTPException, so FastAPI lets it through."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"is larger than {limit} bytes")


class NestedTooDeeply(HTTPException):
    """Raised from ``receive`` like ``BodyTooLarge``; reported on ``body``."""

    field = "body"

    def __init__(self) -> None:
        super().__init__(400, json_depth.MESSAGE)


# The methods whose JSON bodies routes parse (reads pay for no check).
_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
# Bodies larger than this are checked in a worker thread (CPU work).
CHECK_INLINE_BYTES = 64 * 1024


class RequestGateMiddleware:
    def __init__(self, app: ASGIApp, default: int, by_path: dict[str, int] | None = None) -> None:
        self.app = app
        self.default = default
        self.by_path = by_path or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in {"http", "websocket"}:
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if len(path) > 1 and path.endswith("/"):
            scope = dict(scope)
            scope["path"] = path = path.rstrip("/") or "/"
            raw = scope.get("raw_path")
            if raw:
                scope["raw_path"] = raw.rstrip(b"/") or b"/"
        refused = _nul_in(path, scope.get("query_string", b""))
        if refused is not None:
            if scope["type"] == "http":
                await error_response(422, {refused: [NUL_MESSAGE]})(scope, receive, send)
            else:
                await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.by_path.get(path, self.default)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _too_large(limit)(scope, receive, send)
            return
        received = 0
        # The chunks of a JSON body, kept (not copied) until the last arrives.
        chunks: list[bytes] | None = (
            []
            if scope["method"] in _WITH_BODY and path not in self.by_path and _is_json(scope)
            else None
        )

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                received += len(chunk)
                if received > limit:
                    raise BodyTooLarge(limit)
                if chunks is not None:
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        await _check_depth(b"".join(chunks))
            return message

        await self.app(scope, counting_receive, send)


async def _check_depth(body: bytes) -> None:
    if len(body) > CHECK_INLINE_BYTES:
        deep: bool = await run_sync(json_depth.too_deep, body)
    else:
        deep = json_depth.too_deep(body)
    if deep:
        raise NestedTooDeeply


def _is_json(scope: Scope) -> bool:
    """Whether a route would parse the body as JSON: ``*/json`` or ``*/*+json``.

    FastAPI's default strict content type leaves a body without one unparsed.
    """
    for name, value in scope["headers"]:
        if name == b"content-type":
            kind: bytes = value.split(b";", 1)[0].strip().lower()
            return kind.endswith((b"/json", b"+json"))
    return False


def _nul_in(path: str, query: bytes) -> str | None:
    """``path`` or ``query`` if that part of the request carries a NUL."""
    if "\x00" in path:
        return "path"
    if b"%00" in query or b"\x00" in query:
        return "query"
    return None


def _too_large(limit: int) -> ASGIApp:
    return error_response(413, {"request": [f"body is larger than {limit} bytes"]})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
