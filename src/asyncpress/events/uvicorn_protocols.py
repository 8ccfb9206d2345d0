"""uvicorn's own protocols, extended to hand event streams a ``DirectWriter``.

Kept apart from ``asyncpress.events.wire`` so that only ``asyncpress serve``
imports uvicorn's protocol modules (httptools among them); the app itself
runs under any ASGI server, with every event then taking the queue.

Each writer reads the protocol's own state (``cycle``, ``flow``,
``writable``, ``conn.state``) to decide whether a write goes out whole and in
order now. That ties these classes to uvicorn's internals;
``tests/test_events.py`` fails if direct writes stop happening.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request
from websockets.protocol import State

from asyncpress.events.wire import DIRECT_KEY

if TYPE_CHECKING:
    from asyncpress.events.log import LoggedEvent

# Streams the HTTP protocol offers a writer to (a path ending so, for any root path).
STREAM_PATH_SUFFIX = "/api/events"

HTTP_PROTOCOL = "asyncpress.events.uvicorn_protocols:EventHttpProtocol"
WS_PROTOCOL = "asyncpress.events.uvicorn_protocols:EventSocketProtocol"


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
