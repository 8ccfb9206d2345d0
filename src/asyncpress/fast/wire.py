"""Writing an event straight to an idle stream's socket, framed once per process.

Through ASGI, each delivery wakes the connection's task, passes the message
down the middleware's send wrappers to the server, and the server frames it
(WebSocket) or chunks it (SSE) once per subscriber. Written directly, a
round of deliveries takes a fraction of that time (docs/benchmarks.md,
"Live events").

``asyncpress serve`` runs uvicorn with the two protocol classes of
``asyncpress.fast.uvicorn_protocols``. Each puts a ``DirectWriter`` into the
ASGI scope's ``extensions`` under ``DIRECT_KEY``; the
hub uses it for an event when the stream's own sender is idle (nothing
queued, nothing being sent), the connection is open and its transport is
below the high-water mark. The bytes are built once per event
(``LoggedEvent.ws_frame``, ``LoggedEvent.sse_chunk``). Anything else (replays,
control messages, a backlog, a client that stopped reading) goes through the
queue and ASGI as before, so order is kept and slow clients are still cut off
by their queue. Under another server, or with ``EVENTS_DIRECT_WRITES=false``,
there is no writer and every event takes the queue.
"""

from __future__ import annotations

import struct
from typing import Protocol

DIRECT_KEY = "asyncpress.direct_write"


class HeadLimits:
    """Bounds on every request head; the defaults are ``Settings``' own."""

    max_bytes = 64 * 1024
    timeout_s = 10.0


def limit_request_heads(max_bytes: int, timeout_s: float) -> None:
    """Set from the settings by the app's lifespan, which uvicorn runs in each
    worker process before it accepts a connection."""
    HeadLimits.max_bytes = max_bytes
    HeadLimits.timeout_s = timeout_s


_TEXT = 0x81  # FIN + text opcode


def ws_text_frame(payload: bytes) -> bytes:
    """One unmasked, uncompressed WebSocket text frame (RFC 6455 §5.2), as a server sends it."""
    size = len(payload)
    if size < 126:
        head = struct.pack("!BB", _TEXT, size)
    elif size < 1 << 16:
        head = struct.pack("!BBH", _TEXT, 126, size)
    else:
        head = struct.pack("!BBQ", _TEXT, 127, size)
    return head + payload


def http_chunk(data: bytes) -> bytes:
    """One chunk of a chunked HTTP/1.1 body (RFC 9112 §7.1)."""
    return b"%x\r\n%b\r\n" % (len(data), data)


class Framed(Protocol):
    """An event already framed for both kinds of stream (``events.journal.LoggedEvent``)."""

    @property
    def ws_frame(self) -> bytes: ...

    @property
    def sse_chunk(self) -> bytes: ...


class DirectWriter(Protocol):
    def ready(self) -> bool:
        """Whether a write now goes out whole, in order, without buffering past the limit."""

    def write_event(self, event: Framed) -> None: ...
