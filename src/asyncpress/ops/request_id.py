"""A request id for every HTTP request, its timing, CORS, and one access line (pure ASGI).

``Server-Timing: app;dur=<ms>`` on every response: the time from the
request's arrival to the start of its response, measured in the server,
where a client's own scheduling and network cannot blur it. One layer does
all four, since each reads the same request headers or edits the same
response headers; the CORS policy is ``ops.cors``'s, and a preflight is
answered here, before routing.

An error nothing else handled is answered here (500 in the API's envelope)
and logged once, with its traceback and the request's id.

The id is the client's ``X-Request-ID`` when it is a sensible token (a load
balancer's or another service's, so one request can be followed across
them), else a new one. It is returned in ``X-Request-ID``, set for the
request's logs (``asyncpress.core.logs.REQUEST_ID``) and written into the
outbox and event rows the request commits.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from asyncpress.core.errors import StreamEnded, error_response
from asyncpress.core.logs import REQUEST_ID
from asyncpress.ops.cors import VARY, Cors
from asyncpress.ops.metrics import observe_request

access = logging.getLogger("asyncpress.access")
log = logging.getLogger(__name__)

HEADER = b"x-request-id"
# Printable, no spaces or quotes, bounded: safe in a log line, a header and a column.
_ACCEPTED = re.compile(r"[A-Za-z0-9._:@/+=-]{1,64}")


def _given(value: bytes | None) -> str | None:
    if value is None:
        return None
    text = value.decode("latin-1")
    return text if _ACCEPTED.fullmatch(text) else None


def _header(scope: Scope, wanted: bytes) -> str | None:
    for name, value in scope["headers"]:
        if name == wanted:
            return str(value.decode("latin-1"))
    return None


def route_template(scope: Scope) -> str | None:
    """The matched route as declared (``/api/articles/{slug}``), for grouping lines.

    The app's routes sit on its own router with their full paths
    (``asyncpress.app.main``), so the route's ``path`` is the whole template.
    """
    template = getattr(scope.get("route"), "path", None)
    return None if template is None else str(template)


class RequestIdMiddleware:
    def __init__(
        self, app: ASGIApp, on_id: Callable[[str], None] | None = None, cors: Cors | None = None
    ) -> None:
        self.app = app
        # Given the id of each request (tracing puts it on the request's span).
        self.on_id = on_id
        self.cors = cors

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = origin = None
        # One pass over the request's headers for both.
        for name, value in scope["headers"]:
            if name == HEADER:
                given = value
            elif name == b"origin":
                origin = value.decode("latin-1")
        # 128 random bits in hex, as uuid4().hex but without building a UUID.
        request_id = _given(given) or os.urandom(16).hex()
        cors = self.cors
        extra: list[tuple[bytes, bytes]] = [] if cors is None else cors.response_headers(origin)
        app = self.app
        if cors is not None and origin is not None and scope["method"] == "OPTIONS":
            method = _header(scope, b"access-control-request-method")
            if method is not None:
                requested = _header(scope, b"access-control-request-headers")
                app = cors.preflight(origin, method, requested)
                extra = [VARY]
        token = REQUEST_ID.set(request_id)
        if self.on_id is not None:
            self.on_id(request_id)
        started = time.perf_counter()
        status = 500  # what the client gets when nothing else was sent
        answered = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, answered
            if message["type"] == "http.response.start":
                status, answered = message["status"], True
                elapsed_ms = (time.perf_counter() - started) * 1000
                headers: list[Any] = list(message.get("headers", []))
                headers.append((HEADER, request_id.encode()))
                headers.append((b"server-timing", f"app;dur={elapsed_ms:.2f}".encode()))
                headers.extend(extra)
                message = {**message, "headers": headers}
            await send(message)

        try:
            await app(scope, receive, send_with_id)
        except Exception as exc:
            # Logged here, once, with its traceback and the request's id; not
            # re-raised, or the server would log it a second time.
            if not isinstance(exc, StreamEnded):
                log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            if not answered:
                await error_response(500, {"server": ["internal error"]})(
                    scope, receive, send_with_id
                )
        finally:
            seconds = time.perf_counter() - started
            route = route_template(scope)
            observe_request(scope["method"], route, status, seconds)
            if access.isEnabledFor(logging.INFO):
                _log_access(scope, route, status, seconds)
            REQUEST_ID.reset(token)


def _log_access(scope: Scope, route: str | None, status: int, seconds: float) -> None:
    access.info(
        "%s %s %s",
        scope["method"],
        scope["path"],
        status,
        extra={
            "method": scope["method"],
            "path": scope["path"],
            "route": route,
            "status": status,
            "duration_ms": round(seconds * 1000, 2),
        },
    )
