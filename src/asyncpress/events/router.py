"""Live events over Server-Sent Events and WebSocket (protocol: docs/realtime.md)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any, TypeGuard

from fastapi import APIRouter, Depends, Header, Query, Request, WebSocket, status
from fastapi.responses import Response
from fastapi.sse import EventSourceResponse, format_sse_event
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocketDisconnect

from asyncpress.core.config import Settings
from asyncpress.core.errors import AppError, Forbidden, Invalid, Unauthorized
from asyncpress.core.schemas import MAX_INT64, Schema
from asyncpress.core.security import TokenError
from asyncpress.core.web import provided
from asyncpress.events.channels import ChannelError, Viewer, routing_keys
from asyncpress.events.guard import CUT_KEY
from asyncpress.events.hub import (
    RESET,
    TRY_AGAIN_LATER,
    Close,
    Connection,
    Hub,
    Outgoing,
    Replay,
)
from asyncpress.events.journal import LoggedEvent, compact_json
from asyncpress.events.tickets import StreamAccess
from asyncpress.fast.wire import DIRECT_KEY, DirectWriter
from asyncpress.users.auth import Authenticator, AuthUserId, ViewerId

router = APIRouter(prefix="/api", tags=["Events"])

POLICY_VIOLATION = 1008

AccessDep = Annotated[StreamAccess, provided(StreamAccess)]
HubDep = Annotated[Hub, provided(Hub)]
SettingsDep = Annotated[Settings, provided(Settings)]


class TicketResponse(Schema):
    ticket: str


@router.post("/events/ticket", status_code=status.HTTP_201_CREATED)
async def issue_ticket(access: AccessDep, user_id: AuthUserId) -> TicketResponse:
    """A single-use ticket that opens one event stream (valid ``EVENTS_TICKET_TTL_S``)."""
    return TicketResponse(ticket=await access.issue(user_id))


def _channel_error(exc: ChannelError) -> AppError:
    kind = {401: Unauthorized, 403: Forbidden}.get(exc.status, Invalid)
    return kind("channels", exc.message)


# -- Server-Sent Events ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class StreamRequest:
    viewer: Viewer | None
    keys: dict[str, str]
    since: int | None


async def open_stream(
    access: AccessDep,
    header_user_id: ViewerId,
    channels: Annotated[
        str,
        Query(
            # 50 names of 80 characters; percent-encoded, any valid value
            # fits in a request head (MAX_REQUEST_HEAD_BYTES, 64 KiB).
            max_length=4_000,
            pattern=CHANNELS_PATTERN,
            description="Comma-separated: global, feed, user, user:<you>, article:<slug>",
        ),
    ],
    ticket: Annotated[str | None, Query(max_length=128)] = None,
    # A plain string: absent and empty both mean "no resume point".
    last_event_id: Annotated[
        str, Header(alias="Last-Event-ID", pattern=LAST_EVENT_ID_PATTERN)
    ] = "",
    last_event_id_query: Annotated[
        int | None, Query(alias="lastEventId", ge=0, le=MAX_INT64)
    ] = None,
) -> StreamRequest:
    """Everything that can refuse a stream, checked before it starts."""
    since = last_event_id_query
    if last_event_id.strip():
        since = _event_id(last_event_id.strip())
    viewer = None
    if ticket is not None:
        viewer = await access.viewer_from_ticket(ticket)
    elif header_user_id is not None:
        viewer = await access.viewer(header_user_id)
    try:
        keys = routing_keys(channels.split(","), viewer)
    except ChannelError as exc:
        raise _channel_error(exc) from exc
    return StreamRequest(viewer=viewer, keys=keys, since=since)


# Lengths are bounded by the parameter's max_length; bounded repeats inside
# the 50-fold repeat would compile to an automaton past the regex size limit.
# The characters a channel name may not hold are spelled out (no "\s"): regex
# dialects disagree on what whitespace is, and the app checks the same set.
_CHANNEL = r"(global|feed|user(:[^,\x00\t\n\v\f\r ]+)?|article:[^,\x00\t\n\v\f\r ]+)"
CHANNELS_PATTERN = rf"^{_CHANNEL}(,{_CHANNEL}){{0,49}}$"


# Up to 18 digits (every id below 10^18, within BIGINT); spaces around are ignored.
LAST_EVENT_ID_PATTERN = r"^\s*([0-9]{1,18})?\s*$"


def _event_id(text: str) -> int:
    # ASCII digits only: str.isdigit() also takes "²", which int() refuses.
    if not (text.isascii() and text.isdigit() and len(text) <= 18):
        raise Invalid("Last-Event-ID", "must be an event id (a whole number)")
    return int(text)


def _frame(event: str, data: dict[str, Any], event_id: int | None = None) -> bytes:
    return format_sse_event(
        data_str=compact_json(data),
        event=event,
        id=None if event_id is None else str(event_id),
    )


HEARTBEAT = format_sse_event(comment="heartbeat")


async def _frames(
    hub: Hub, conn: Connection, replay: Replay | None, settings: Settings
) -> AsyncIterator[bytes]:
    """The stream's bytes: replay, then live events, heartbeats and the lifetime cap."""
    if replay is not None:
        async for missed in hub.replay(conn, replay):
            if isinstance(missed, LoggedEvent):
                yield missed.sse_frame
            else:
                reason = f"events after {replay.since} are no longer kept; reload what you show"
                yield _frame("reset", {"reason": reason}, replay.upto)
    loop = asyncio.get_running_loop()
    ends_at = loop.time() + settings.events_max_lifetime_s
    while True:
        left = ends_at - loop.time()
        if left <= 0:
            yield _frame("reconnect", {"reason": "connection lifetime reached"})
            return
        try:
            async with asyncio.timeout(min(settings.events_heartbeat_s, left)):
                item = await _next(conn)
        except TimeoutError:
            yield HEARTBEAT
            continue
        if isinstance(item, Close):
            return
        if isinstance(item, LoggedEvent):
            yield item.sse_frame


async def _next(conn: Connection) -> Outgoing:
    """The next queued item; while waiting, the hub may write events straight to the socket."""
    conn.idle = True
    try:
        return await conn.queue.get()
    finally:
        conn.idle = False


def _direct_writer(scope: Scope, settings: Settings) -> DirectWriter | None:
    """The server's writer for this stream (see asyncpress.fast.wire), unless turned off."""
    if not settings.events_direct_writes:
        return None
    writer: DirectWriter | None = (scope.get("extensions") or {}).get(DIRECT_KEY)
    return writer


class EventStream(EventSourceResponse):
    """FastAPI's SSE response that leaves the hub however the stream ends.

    The body generator may never start (a client gone before the first
    byte), so the hub is left here rather than in the generator.
    """

    def __init__(self, hub: Hub, conn: Connection, content: AsyncIterator[bytes]) -> None:
        super().__init__(content, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self.hub = hub
        self.conn = conn

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.hub.disconnect(self.conn)


_SSE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A stream of Server-Sent Events (see docs/realtime.md)",
        "content": {
            "text/event-stream": {
                "schema": {
                    "type": "object",
                    "description": "One event: `event` names its type, `data` is JSON.",
                    "properties": {
                        "event": {"type": "string"},
                        "data": {"type": "string"},
                        "id": {"type": "string"},
                        "retry": {"type": "integer"},
                    },
                }
            }
        },
    }
}


@router.get("/events", response_class=Response, responses=_SSE_RESPONSES)
async def event_stream(
    request: Request,
    hub: HubDep,
    settings: SettingsDep,
    opened: Annotated[StreamRequest, Depends(open_stream)],
) -> EventStream:
    """Server-Sent Events on the named channels; resumes after ``Last-Event-ID``."""
    # FastAPI's EventSourceResponse around our own byte stream, not FastAPI's
    # generator pipeline: each event is encoded once per process and written
    # straight from this connection's queue, one task hop instead of four.
    # Before the connection exists: nothing to leave behind if the request
    # is cancelled while it waits.
    await hub.catch_up()
    conn = hub.connect("sse", opened.viewer)
    conn.cut = request.scope.get(CUT_KEY)
    conn.direct = _direct_writer(request.scope, settings)
    new = hub.subscribe(conn, opened.keys)
    replay = None if opened.since is None else hub.replay_request(conn, opened.since, new)
    return EventStream(hub, conn, _frames(hub, conn, replay, settings))


# -- WebSocket -------------------------------------------------------------


class SocketSession:
    """One WebSocket connection: a reader for client messages, a sender for the rest."""

    def __init__(
        self,
        websocket: WebSocket,
        hub: Hub,
        access: StreamAccess,
        auth: Authenticator,
        conn: Connection,
        send_timeout_s: float,
    ) -> None:
        self.ws = websocket
        self.hub = hub
        self.access = access
        self.auth = auth
        self.conn = conn
        self.send_timeout_s = send_timeout_s

    async def run(self) -> None:
        # Whichever side ends first ends the other: a client that left needs
        # no more sends, and a stream the server closed (shutdown, a client
        # too slow to read) needs no more reading.
        async with asyncio.TaskGroup() as group:
            sender = group.create_task(self._send_loop())
            receiver = group.create_task(self._receive_loop())
            sender.add_done_callback(lambda _: receiver.cancel())
            receiver.add_done_callback(lambda _: sender.cancel())

    # sending

    async def _send(self, message: dict[str, Any] | str) -> None:
        text = message if isinstance(message, str) else compact_json(message)
        async with asyncio.timeout(self.send_timeout_s):
            await self.ws.send_text(text)

    async def _close(self, code: int, reason: str) -> None:
        try:
            async with asyncio.timeout(2.0):
                await self.ws.close(code, reason)
        except (TimeoutError, RuntimeError, WebSocketDisconnect, OSError):
            pass  # already closed, or the client is not reading: the server drops it

    async def _send_loop(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(None) as cut:
                self.conn.cut = lambda: cut.reschedule(loop.time())
                while True:
                    item = await _next(self.conn)
                    if isinstance(item, Close):
                        break
                    if isinstance(item, Replay):
                        await self._replay(item)
                    elif isinstance(item, LoggedEvent):
                        await self._send(item.wire_text)
                    else:
                        await self._send(item)
        except TimeoutError:
            # The queue overflowed (cut) or one send took too long.
            self.conn.finish(TRY_AGAIN_LATER, "client is not reading fast enough")
        assert self.conn.closing is not None
        await self._close(self.conn.closing.code, self.conn.closing.reason)

    async def _replay(self, request: Replay) -> None:
        async for item in self.hub.replay(self.conn, request):
            if item is RESET:
                reason = f"events after {request.since} are no longer kept; reload what you show"
                await self._send(
                    {
                        "type": "event",
                        "id": request.upto,
                        "event": "reset",
                        "data": {"reason": reason},
                    }
                )
            else:
                assert isinstance(item, LoggedEvent)
                await self._send(item.wire_text)

    # receiving

    def _error(self, message: str) -> None:
        self.conn.offer({"type": "error", "message": message})

    async def _receive_loop(self) -> None:
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                self._error("send JSON text messages")
                continue
            try:
                parsed = json.loads(text)
            except ValueError:
                self._error("invalid JSON")
                continue
            if not isinstance(parsed, dict) or not isinstance(parsed.get("type"), str):
                self._error("a message is a JSON object with a string 'type'")
                continue
            await self._handle(parsed)

    async def _handle(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "ping":
            self.conn.offer({"type": "pong"})
        elif kind == "auth":
            await self._authenticate(message.get("token"))
        elif kind == "subscribe":
            await self._subscribe(message.get("channels"), message.get("lastEventId"))
        elif kind == "unsubscribe":
            channels = message.get("channels")
            if not _string_list(channels):
                self._error("'channels' must be a non-empty list of channel names")
                return
            self.hub.unsubscribe(self.conn, channels)
            self.conn.offer({"type": "subscribed", "channels": sorted(self.conn.names)})
        else:
            self._error(f"unknown message type '{kind[:40]}'")

    async def _authenticate(self, token: object) -> None:
        if self.conn.viewer is not None:
            self._error("this connection is already authenticated")
            return
        if not isinstance(token, str) or not token:
            self._error("'token' must be the JWT from login")
            return
        try:
            user_id = self.auth.tokens.user_id(token)
            self.conn.viewer = await self.access.viewer(user_id)
        except (TokenError, AppError):
            self._error("token is invalid or expired")

    async def _subscribe(self, channels: object, last_event_id: object) -> None:
        if not _string_list(channels):
            self._error("'channels' must be a non-empty list of channel names")
            return
        if last_event_id is not None and (
            not isinstance(last_event_id, int)
            or isinstance(last_event_id, bool)
            or not 0 <= last_event_id <= MAX_INT64
        ):
            self._error("'lastEventId' must be an event id (a whole number)")
            return
        try:
            keys = routing_keys(channels, self.conn.viewer, held=self.conn.names)
        except ChannelError as exc:
            self._error(exc.message)
            return
        await self.hub.catch_up()
        new = self.hub.subscribe(self.conn, keys)
        self.conn.offer({"type": "subscribed", "channels": sorted(self.conn.names)})
        if last_event_id is not None and new:
            self.conn.offer(self.hub.replay_request(self.conn, last_event_id, new))


def _string_list(value: object) -> TypeGuard[list[str]]:
    return (
        isinstance(value, list)
        and 0 < len(value) <= 1000
        and all(isinstance(item, str) for item in value)
    )


@router.websocket("/ws")
async def event_socket(
    websocket: WebSocket,
    hub: HubDep,
    access: AccessDep,
    auth: Annotated[Authenticator, provided(Authenticator)],
    settings: SettingsDep,
) -> None:
    """Live events over WebSocket: subscribe, unsubscribe, ping (see docs/realtime.md)."""
    await websocket.accept()
    ticket = websocket.query_params.get("ticket")
    header = websocket.headers.get("authorization")
    viewer = None
    try:
        if ticket is not None:
            viewer = await access.viewer_from_ticket(ticket)
        elif (user_id := auth.user_id_from_header(header)) is not None:
            viewer = await access.viewer(user_id)
    except AppError as exc:
        await websocket.send_json({"type": "error", "message": f"{exc.field} {exc.message}"})
        await websocket.close(POLICY_VIOLATION)
        return
    conn = hub.connect("ws", viewer)
    conn.direct = _direct_writer(websocket.scope, settings)
    try:
        await SocketSession(
            websocket, hub, access, auth, conn, settings.events_send_timeout_s
        ).run()
    finally:
        hub.disconnect(conn)
