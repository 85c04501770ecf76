"""The websocket endpoint `/rooms/{name}?token=`: admission, then the receive loop.

A page from a foreign origin is refused first (`edge.refusal`). Every refusal is a close frame with a code and a human reason (never a bare HTTP 403), so
clients and people can tell a bad token from a bad room name from bad input; the codes are
`wire.protocol.Close`.

What one connection may cost is bounded here (its receive rate) and in `room.Conn` (its send
backlog, awareness ids and states, full-state requests). A connection closed for cause, or
given up by uvicorn's keepalive, has its TCP transport aborted shortly after: a peer that
never reads must not keep its socket, buffers and room alive.

A connection lasts no longer than its link: when the link is revoked or expires, the process's
watcher (`common.lapses`) tells it and it is closed with 4401 and the reason ("this link was
revoked" / "this link expired"), which the page shows; frames it sent after that are dropped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from starlette.websockets import WebSocket

from common.access import OPEN, ROOM_RULE, TokenError, TokenInfo, token_of, valid_room
from common.actor import Actor
from wire.protocol import SERVER_PEER_HEADER, Close, ProtocolError

from .conn import REPLY_S, Conn, Transport
from .edge import refusal
from .room import Room
from .rooms import RoomUnavailable
from .settings import FLOOD_S, ConnectionLimits

if TYPE_CHECKING:
    from .settings import ServerSettings

log = logging.getLogger("inhabit.ws")

NS = 1_000_000_000


def transport_of(ws: WebSocket) -> Transport:
    """The TCP transport under an ASGI websocket, to abort a peer that will not read.

    ASGI has no abort, and uvicorn's close waits for the write buffer to drain, which a peer
    that stopped reading never lets happen. The ASGI `receive` callable uvicorn hands us is a
    bound method of its protocol object, which holds the transport: that is the one place we
    reach below ASGI. Raises at admission, not silently later, if uvicorn changes.
    """
    protocol = getattr(ws._receive, "__self__", None)
    transport = getattr(protocol, "transport", None)
    if not all(callable(getattr(transport, m, None)) for m in ("abort", "is_closing", "pause_reading")):
        raise RuntimeError(f"cannot reach the TCP transport behind the ASGI receive ({ws._receive!r}): "
                           "server.websocket.transport_of expects uvicorn's websockets-sansio protocol")
    return transport  # type: ignore[return-value]


class RecvBudget:
    """A connection's receive rate (bytes/s and messages/s), as a GCRA token bucket.

    `charge` returns how long to wait before the next receive: the peer is slowed down, and
    since uvicorn stops reading a socket while a message waits for us, TCP backpressure does
    the rest. Integers (nanoseconds) only: this runs for every frame.
    """

    __slots__ = ("byte_rate", "msg_ns", "byte_slack", "msg_slack", "byte_tat", "msg_tat", "held_since")
    # A flood is being held back for FLOOD_S without easing off in between; hovering at the
    # limit after a sleep counts as held (a flooder always has its next frame waiting).

    def __init__(self, bytes_per_s: int, messages_per_s: int, burst_bytes: int) -> None:
        self.byte_rate = bytes_per_s
        self.msg_ns = NS // messages_per_s
        self.byte_slack = burst_bytes * NS // bytes_per_s  # bursts up to `burst_bytes` ...
        self.msg_slack = NS  # ... and up to one second's worth of messages
        self.byte_tat = self.msg_tat = 0  # "theoretical arrival time" of the next frame
        self.held_since = 0  # when the peer was first held back since it last eased off (0: never)

    def charge(self, nbytes: int) -> int:
        """Account for a frame; returns nanoseconds to wait, or -1 for a sustained flood."""
        now = time.monotonic_ns()
        self.byte_tat = max(self.byte_tat, now) + nbytes * NS // self.byte_rate
        self.msg_tat = max(self.msg_tat, now) + self.msg_ns
        ahead = max(self.byte_tat - self.byte_slack, self.msg_tat - self.msg_slack) - now
        if ahead <= 0:
            if ahead < -NS // 2:  # eased off (half a second under its allowance): not a flood
                self.held_since = 0
            return 0
        if not self.held_since:
            self.held_since = now
        elif now - self.held_since > FLOOD_S * NS:
            return -1
        return ahead


def _watch(conn: Conn, every: float) -> None:
    """Every `every` s: a transport uvicorn is closing (keepalive timeout) gets aborted soon.

    uvicorn's keepalive timeout closes the transport without telling the app, and that close
    waits for a drain that never comes from a peer that stopped reading."""
    if conn.closed:
        return
    if conn.transport.is_closing():
        conn.closed = True
        conn.abort_later()
        return
    asyncio.get_running_loop().call_later(every, _watch, conn, every)


async def refuse(ws: WebSocket, code: int, reason: str) -> None:
    ws.app.state.metrics.rejected += 1
    await ws.accept()
    await ws.close(code, reason)


def actor_of(ws: WebSocket, who: TokenInfo, room: str) -> Actor:
    """Who a connection is: its link, and a server kind only if it shows a credential the server
    issued in process to one of its own peers for this room (`server.vouch`)."""
    vouched = ws.app.state.peers.claim(ws.headers.get(SERVER_PEER_HEADER), room)
    if vouched is None:
        return Actor(id=who.id, name=who.label, kind="human", role=who.role)
    return Actor(id=who.id, name=vouched.name, kind=vouched.kind, role=who.role)


async def room_endpoint(ws: WebSocket) -> None:
    state = ws.app.state
    settings: ServerSettings = state.settings
    metrics = state.metrics
    name = ws.path_params["name"]
    if (refused := refusal(ws.headers, settings, acting=True)) is not None:  # a foreign page (server.edge)
        metrics.cross_origin_refused += 1
        log.warning("refused a websocket to room %r: %s", name, refused[1])
        return await refuse(ws, Close.POLICY, refused[1].encode()[:123].decode(errors="ignore"))  # a close reason's bound
    if not valid_room(name):
        return await refuse(ws, Close.BAD_ROOM, ROOM_RULE)
    who: TokenInfo = OPEN
    if not settings.open:  # expired, revoked, forged or another room's token: refused before the room loads
        try:
            who = state.access.verify(token_of(ws), name)
        except TokenError as exc:
            return await refuse(ws, exc.code, str(exc))

    transport = transport_of(ws)
    rooms = state.rooms
    try:
        room = await rooms.acquire(name)
    except RoomUnavailable as exc:  # cluster mode: Redis or PostgreSQL away
        return await refuse(ws, Close.UNAVAILABLE, f"{exc}; reconnect later")
    await ws.accept()
    metrics.connections_accepted += 1
    limits = settings.connections
    conn = Conn(ws, transport, who.id, who.role, limits, metrics, actor_of(ws, who, name))
    _watch(conn, max(1.0, min(10.0, limits.ping_interval / 2)))
    unwatch = state.lapses.watch_token(who, lambda why: _lapsed(conn, why))
    room.join(conn)
    rooms.joined(room)
    peer_left = True  # unless the loop ends on our side
    try:
        peer_left = await _receive_loop(ws, conn, room, limits)
    finally:  # also on cancellation (shutdown): the room must never keep a dead connection
        unwatch()
        room.leave(conn)
        rooms.release(room)
        await conn.finish(peer_left)


def _lapsed(conn: Conn, why: str) -> None:
    """The connection's link was revoked or expired: it ends now."""
    conn.metrics.lapsed_closed += 1
    conn.close(Close.BAD_TOKEN, why, reply_s=REPLY_S)  # an honest peer's close reply ends it at once


async def _receive_loop(ws: WebSocket, conn: Conn, room: Room, limits: ConnectionLimits) -> bool:
    """Hand every frame to the room until either side closes; True if the peer left."""
    metrics = conn.metrics
    max_message = limits.max_message
    budget = RecvBudget(limits.recv_bytes_per_s, limits.recv_messages_per_s, max_message)
    receive = ws._receive  # the raw ASGI receive: no per-message state bookkeeping
    try:
        while not conn.closed:
            msg = await receive()
            if msg["type"] != "websocket.receive":
                return True  # websocket.disconnect
            if conn.closed:  # closed while we waited (its link lapsed, it fell behind): nothing more lands
                break
            data = msg.get("bytes")
            if data is None:
                metrics.bad_input += 1
                conn.close(Close.TEXT_FRAME, "text frames are not supported: send binary y-websocket messages")
                break
            n = len(data)
            metrics.messages_in += 1
            metrics.bytes_in += n
            if n > max_message:
                metrics.bad_input += 1
                conn.close(Close.TOO_BIG, f"message of {n} bytes exceeds the limit of {max_message} bytes")
                break
            try:
                room.handle(conn, data)
            except ProtocolError as exc:
                metrics.bad_input += 1
                conn.close(Close.MALFORMED, f"malformed message: {exc}")
                break
            except Exception:  # nothing a client sends may take the room down
                log.exception("error handling a message in room %s", room.name)
                conn.close(Close.INTERNAL, "internal error while handling your message")
                break
            wait = budget.charge(n)
            if wait:
                if wait < 0:
                    conn.policy(f"sending over {limits.recv_messages_per_s} messages/s or "
                                f"{limits.recv_bytes_per_s} bytes/s for {FLOOD_S} s")
                    break
                await asyncio.sleep(wait / NS)
    except Exception:  # connection dropped under us
        return True
    return False
