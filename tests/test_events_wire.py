"""The bytes the hub writes straight to sockets, against the libraries that parse them."""

from __future__ import annotations

import h11
import pytest
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from asyncpress.events.hub import Connection, Offered
from asyncpress.events.journal import LoggedEvent
from asyncpress.fast.wire import http_chunk, ws_text_frame


def _parse_frame(data: bytes) -> Frame:
    """What a client's ``websockets`` parser reads from ``data`` (unmasked, as from a server)."""
    reader = StreamReader()
    reader.feed_data(data)
    parser = Frame.parse(reader.read_exact, mask=False)
    try:
        next(parser)
    except StopIteration as done:
        frame: Frame = done.value
        return frame
    raise AssertionError("the frame was incomplete")


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65_535, 65_536, 200_000])
def test_a_text_frame_of_any_length_parses_as_one_whole_message(size: int) -> None:
    payload = b"e" * size
    frame = _parse_frame(ws_text_frame(payload))
    assert frame.opcode is Opcode.TEXT
    assert frame.fin
    assert frame.data == payload
    # The same bytes as the websockets library itself serialises for a server.
    assert ws_text_frame(payload) == Frame(Opcode.TEXT, payload).serialize(mask=False)


def test_chunks_reassemble_into_the_body_an_http_client_reads() -> None:
    parts = [b"data: one\n\n", b"x" * 5000, b"id: 3\nevent: e\ndata: {}\n\n"]
    head = (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    )
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method="GET", target="/api/events", headers=[("Host", "x")]))
    client.send(h11.EndOfMessage())
    client.receive_data(head + b"".join(http_chunk(p) for p in parts) + b"0\r\n\r\n")
    body = b""
    while True:
        event = client.next_event()
        if isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            break
        else:
            assert isinstance(event, h11.Response)
    assert body == b"".join(parts)


def test_an_event_carries_its_frames_ready_to_write() -> None:
    event = LoggedEvent(
        id=7,
        type="article.created",
        time="2026-11-22T10:00:00.000Z",
        channels=frozenset({"global"}),
        data={"article": {"slug": "ünïcode"}},
    )
    assert _parse_frame(event.ws_frame).data == event.wire_text.encode()
    assert event.sse_chunk == http_chunk(event.sse_frame)
    assert event.sse_frame.startswith(b"event: article.created\ndata: {")
    assert event.sse_frame.endswith(b"\nid: 7\n\n")


class _BrokenWriter:
    """A direct writer whose server does not have what it reads."""

    def ready(self) -> bool:
        raise AttributeError("'Protocol' object has no attribute 'disconnected'")

    def write_event(self, event: object) -> None:
        raise AssertionError("never reached")


async def test_a_failing_direct_writer_falls_back_to_the_queue() -> None:
    conn = Connection(kind="ws", limit=10, idle=True, direct=_BrokenWriter())
    event = LoggedEvent(id=1, type="t", time="now", channels=frozenset({"global"}), data={})
    assert conn.offer(event) is Offered.QUEUED
    assert conn.direct is None  # later events go straight to the queue
    assert conn.offer(event) is Offered.QUEUED
    assert conn.queue.qsize() == 2
