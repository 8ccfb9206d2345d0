"""Writing an event straight to an idle stream's socket, framed once per process.

Through ASGI, each delivery wakes the connection's task, passes the message
down the middleware's send wrappers to the server, and the server frames it
(WebSocket) or chunks it (SSE) once per subscriber. At 5,000 subscribers
that was 45-70 µs per delivery; written directly, about 19 µs
(docs/benchmarks.md, "Live events").

``asyncpress serve`` runs uvicorn with the two protocol classes below. Each
puts a writer into the ASGI scope's ``extensions`` under ``DIRECT_KEY``; the
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
from typing import TYPE_CHECKING, Any, Protocol

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request
from websockets.protocol import State

if TYPE_CHECKING:
    from asyncpress.events.log import LoggedEvent

DIRECT_KEY = "asyncpress.direct_write"
# Streams the HTTP protocol offers a writer to (a path ending so, for any root path).
STREAM_PATH_SUFFIX = "/api/events"

HTTP_PROTOCOL = "asyncpress.events.wire:EventHttpProtocol"
WS_PROTOCOL = "asyncpress.events.wire:EventSocketProtocol"

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


class DirectWriter(Protocol):
    def ready(self) -> bool:
        """Whether a write now goes out whole, in order, without buffering past the limit."""

    def write_event(self, event: LoggedEvent) -> None: ...


class SocketWriter:
    __slots__ = ("_protocol",)

    def __init__(self, protocol: WebSocketsSansIOProtocol) -> None:
        self._protocol = protocol

    def ready(self) -> bool:
        p = self._protocol
        return (
            p.handshake_complete
            and not p.close_sent
            and not p.disconnected
            and p.writable.is_set()
            and p.conn.state is State.OPEN
            # A negotiated extension (compression) frames messages its own way.
            and not p.conn.extensions
            and not p.transport.is_closing()
        )

    def write_event(self, event: LoggedEvent) -> None:
        self._protocol.transport.write(event.ws_frame)


class ChunkWriter:
    __slots__ = ("_cycle",)

    def __init__(self, cycle: RequestResponseCycle) -> None:
        self._cycle = cycle

    def ready(self) -> bool:
        c = self._cycle
        return (
            c.response_started
            and not c.response_complete
            and not c.disconnected
            and c.chunked_encoding is True
            and not c.flow.write_paused
            and not c.transport.is_closing()
        )

    def write_event(self, event: LoggedEvent) -> None:
        self._cycle.transport.write(event.sse_chunk)


def _extensions(scope: Any) -> dict[str, Any]:
    extensions: dict[str, Any] = scope.setdefault("extensions", {})
    return extensions


class EventHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, offering event streams a ``ChunkWriter``."""

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        cycle = self.cycle
        # An upgrade returns before a cycle is made; the last one is then another request's.
        if (
            cycle is not None
            and cycle.scope is self.scope
            and self.scope.get("path", "").endswith(STREAM_PATH_SUFFIX)
        ):
            _extensions(self.scope)[DIRECT_KEY] = ChunkWriter(cycle)


class EventSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O ``websockets`` protocol, offering the app a ``SocketWriter``."""

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)  # unset when the handshake was refused
        if scope is not None:
            _extensions(scope)[DIRECT_KEY] = SocketWriter(self)
