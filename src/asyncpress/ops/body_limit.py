"""Request bodies are bounded (pure ASGI), with the error in our envelope.

The size is counted as the body streams in, so a ``Content-Length`` that
lies, or none at all, changes nothing; a declared size over the limit is
refused before a byte is read. Routes that take large bodies (bulk import)
get their own limit by path.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from asyncpress.errors import error_response


class BodyTooLarge(HTTPException):
    """Raised from ``receive``; an HTTPException, so FastAPI lets it through."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"is larger than {limit} bytes")


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, default: int, by_path: dict[str, int] | None = None) -> None:
        self.app = app
        self.default = default
        self.by_path = by_path or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.by_path.get(scope["path"], self.default)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _too_large(limit)(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counting_receive, send)


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
