"""One websocket peer in a room: what it is sent, its request budget, its closing.

`send` never blocks and never awaits: it writes a complete websocket frame straight to the
connection's TCP transport, where the bytes wait until the kernel takes them. That write
buffer is bounded in bytes, so a slow or non-reading client only ever fills its own buffer
and is closed (for real: its transport is aborted after a short grace) instead of holding
memory or stalling the room.

Why not ASGI's `websocket.send`: it costs a task switch, an ASGI event, Starlette's wrapper
and a frame serialization per message per connection, which is most of a fan-out server's
CPU (bench/fanout.py: about a third of ours). A broadcast serializes its frame once, with
the websockets library that uvicorn itself uses, and writes the same bytes to every peer.
Closing still goes through ASGI, so uvicorn's protocol state stays its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any, Protocol

from websockets.frames import Frame, Opcode

from common.actor import Actor
from wire import protocol as p

from .settings import ConnectionLimits

if TYPE_CHECKING:
    from .metrics import Metrics

log = logging.getLogger("inhabit.conn")

CLOSE_GRACE = 2.0
"""Seconds a closing connection gets to take its close frame before its transport is aborted."""
REPLY_S = 0.5
"""Seconds a connection closed for its link (`close(..., reply_s=REPLY_S)`) is still read, so an
honest peer's close reply ends the connection at once rather than at the abort."""

STATE_REQUESTS = 4
"""Full-state requests (SyncStep1, QueryAwareness) one connection may burst; honest peers send one."""
STATE_REQUEST_EVERY = 15.0
"""Seconds that earn one more full-state request (so STATE_REQUESTS a minute, sustained)."""


def binary_frame(msg: bytes) -> bytes:
    """`msg` as one complete, unmasked binary websocket frame (server to client, no extensions:
    the server never negotiates permessage-deflate)."""
    return Frame(Opcode.BINARY, msg).serialize(mask=False)


class Transport(Protocol):
    """What a connection needs of the TCP transport under its websocket (see websocket.transport_of)."""

    def write(self, data: bytes) -> None: ...
    def get_write_buffer_size(self) -> int: ...
    def abort(self) -> None: ...
    def is_closing(self) -> bool: ...
    def pause_reading(self) -> None: ...
    def get_extra_info(self, name: str, default: Any = None) -> Any: ...


class Conn:
    """One websocket peer in a room. `send` writes at once; only closing awaits.

    Everything it can make the server hold is bounded: its write buffer in bytes, its
    awareness ids and their states' size, how often it may ask for the full state.
    """

    __slots__ = ("ws", "transport", "identity", "role", "actor", "writer", "limit_bytes", "awareness_ids", "max_ids", "max_state",
                 "closed", "close_args", "closing", "denied", "metrics", "requests", "requests_at", "resyncing")

    def __init__(self, ws: Any, transport: Transport, identity: str, role: str, limits: ConnectionLimits, metrics: Metrics,
                 actor: Actor | None = None) -> None:
        self.ws = ws
        self.transport = transport
        self.identity = identity  # the token's id: who may reclaim our awareness ids after we leave
        self.role = role
        self.actor = actor or Actor(id=identity, name=identity, role="edit" if role == "edit" else "view")
        """Who this connection is, as the server knows it: its link, or one of the server's own peers."""
        self.writer = self.actor.model_dump_json(exclude_none=True)
        """`actor` as JSON, once: what a cluster's stream carries with the chat lines it writes."""
        self.limit_bytes = limits.send_queue_bytes
        self.awareness_ids: set[int] = set()
        self.max_ids = limits.awareness_ids
        self.max_state = limits.awareness_bytes
        self.closed = False
        self.close_args: tuple[int, str] | None = None
        self.closing: asyncio.Task[None] | None = None  # sends the close frame
        self.denied = False
        self.metrics = metrics
        self.requests = float(STATE_REQUESTS)  # a token bucket of full-state requests
        self.requests_at = time.monotonic()
        self.resyncing = False
        """Set when one of its updates depended on updates the room never got: what it sends
        until its next SyncStep2 is dropped, that SyncStep2 carries it (see `Room.handle`)."""

    def send(self, msg: bytes, frame: bytes | None = None) -> None:
        """Write `msg` (or its ready-made `frame`); close the connection as too slow if the
        bytes it has not taken yet would pass the bound.

        One message is always accepted into an empty buffer (a full-state reply may be larger
        than the bound); a BACKLOG past `send_queue_bytes` is not.
        """
        if self.closed:
            return
        transport = self.transport
        if transport.is_closing():  # the peer is gone; the receive loop will see it
            return
        waiting = transport.get_write_buffer_size()
        if waiting and waiting + len(msg) > self.limit_bytes:
            self.metrics.slow_closed += 1
            self.close(p.Close.TOO_SLOW, "send buffer overflow: client too slow to keep up, reconnect")
            return
        transport.write(frame or binary_frame(msg))

    def close(self, code: int, reason: str, reply_s: float = 0.0) -> None:
        """Send a close frame after what was already written (so a PermissionDenied or reason
        still arrives), and abort the transport CLOSE_GRACE later whatever happens: a peer that
        does not read would otherwise keep its socket and buffers forever (uvicorn's close
        waits for a drain). The peer is read `reply_s` more (for its close reply), then not."""
        if self.closed:
            return
        self.closed = True
        self.close_args = (code, reason.encode()[:123].decode(errors="ignore"))
        self.closing = asyncio.get_running_loop().create_task(self._send_close(*self.close_args, reply_s))
        self.abort_later()

    async def _send_close(self, code: int, reason: str, reply_s: float = 0.0) -> None:
        with contextlib.suppress(Exception):  # the peer may be gone already: the abort follows anyway
            await self.ws.close(code, reason)
        # uvicorn now reads and discards whatever the peer sends, unthrottled, until the
        # transport closes: a flooder would keep the loop busy parsing it
        if reply_s:
            asyncio.get_running_loop().call_later(reply_s, self._stop_reading)
        else:
            self.transport.pause_reading()

    def _stop_reading(self) -> None:
        if not self.transport.is_closing():
            self.transport.pause_reading()

    def abort_later(self) -> None:
        """Drop the TCP connection CLOSE_GRACE from now (a no-op if it closed cleanly by then)."""
        asyncio.get_running_loop().call_later(CLOSE_GRACE, self.transport.abort)

    def may_request_state(self) -> bool:
        """Spend one full-state request; False once the connection asks more than its budget."""
        now = time.monotonic()
        self.requests = min(STATE_REQUESTS, self.requests + (now - self.requests_at) / STATE_REQUEST_EVERY)
        self.requests_at = now
        if self.requests < 1:
            return False
        self.requests -= 1
        return True

    def policy(self, reason: str) -> None:
        """Close for crossing a per-connection bound (1008, not worth retrying as is)."""
        self.metrics.policy_closed += 1
        self.close(p.Close.POLICY, reason)

    async def finish(self, peer_left: bool) -> None:
        """Close from our side unless the peer left; never waits on a dead peer past CLOSE_GRACE.

        If we are the ones closing, the close frame gets CLOSE_GRACE to go out (`close`
        schedules the abort that follows it); if the peer left, there is nothing to send."""
        if peer_left:
            if self.close_args is None:  # the peer's close may still wait on a drain that never comes
                self.closed = True
                self.abort_later()
            return
        self.close(p.Close.NORMAL, "")
        if self.closing is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(CLOSE_GRACE):
                    await asyncio.shield(self.closing)
