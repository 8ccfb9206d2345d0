"""uvicorn's own protocols, extended to hand event streams a ``DirectWriter``.

Kept apart from ``asyncpress.fast.wire`` so that only ``asyncpress serve``
imports uvicorn's protocol modules (httptools among them); the app itself
runs under any ASGI server, with every event then taking the queue.

Each writer reads the protocol's own state (``cycle``, ``flow``,
``writable``, ``conn.state``) to decide whether a write goes out whole and in
order now. That ties these classes to uvicorn's internals;
``tests/test_events.py`` fails if direct writes stop happening.

The HTTP protocol also bounds every request head, which httptools does not:
its size (``MAX_REQUEST_HEAD_BYTES``, 431 past it) and the time to receive it
(``REQUEST_HEAD_TIMEOUT_S``: 408, or a plain close for a connection that sent
nothing). Without them one 32 MiB header was accepted whole and idle or
trickling sockets (slowloris) stayed open for ever; ``tests/test_server.py``
sends both.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request
from websockets.protocol import State

from asyncpress.fast.wire import DIRECT_KEY, Framed, HeadLimits

# Streams the HTTP protocol offers a writer to (a path ending so, for any root path).
STREAM_PATH_SUFFIX = "/api/events"


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

    def write_event(self, event: Framed) -> None:
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

    def write_event(self, event: Framed) -> None:
        self._cycle.transport.write(event.sse_chunk)


def _extensions(scope: Any) -> dict[str, Any]:
    extensions: dict[str, Any] = scope.setdefault("extensions", {})
    return extensions


# How long a refused connection's input is read and discarded before it closes.
LINGER_S = 2.0


def _refusal(status: int, reason: bytes, message: str) -> bytes:
    body = json.dumps({"errors": {"request": [message]}}).encode()
    return b"".join(
        [
            b"HTTP/1.1 %d %s\r\n" % (status, reason),
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
            body,
        ]
    )


class EventHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, offering event streams a ``ChunkWriter``,
    with every request head bounded in size and in time."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._max_head = HeadLimits.max_bytes
        self._head_timeout_s = HeadLimits.timeout_s
        self._awaiting_head = True
        self._head_bytes = 0
        self._head_timer: asyncio.TimerHandle | None = None
        self._refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # answered already; what still arrives is discarded
        waiting = self._awaiting_head
        super().data_received(data)
        # Counted only while the head is still incomplete after this chunk,
        # so a body that follows its head in one read does not count.
        if waiting and self._awaiting_head and not self.transport.is_closing():
            self._head_bytes += len(data)
            if self._head_bytes > self._max_head:
                self._refuse(
                    _refusal(
                        431,
                        b"Request Header Fields Too Large",
                        f"head is larger than {self._max_head} bytes",
                    )
                )

    def on_response_complete(self) -> None:
        pipelined = bool(self.pipeline)  # its head has arrived already
        super().on_response_complete()
        if not pipelined and not self.transport.is_closing():
            self._awaiting_head = True
            self._head_bytes = 0
            self._arm_head_timer()

    def _arm_head_timer(self) -> None:
        self._disarm_head_timer()
        self._head_timer = self.loop.call_later(self._head_timeout_s, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self._awaiting_head or self.transport.is_closing():
            return
        if self._head_bytes:
            message = f"head not received within {self._head_timeout_s:g} s"
            self._refuse(_refusal(408, b"Request Timeout", message))
        else:  # an idle connection: nothing to answer
            self.transport.close()

    def _refuse(self, response: bytes) -> None:
        """Answer, then close without a reset that would destroy the answer.

        Closing with unread input makes the kernel reset the connection, and
        a client still sending its head would never read the 431. So: answer,
        half-close, discard what still comes for a moment, then close.
        """
        self._disarm_head_timer()
        self._refused = True
        self.transport.write(response)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_S, self.transport.close)

    def on_headers_complete(self) -> None:
        self._awaiting_head = False
        self._head_bytes = 0
        self._disarm_head_timer()
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
