"""One room: its pycrdt document, its connections and their awareness states.

The hot path (`Room.handle`) applies an update once and forwards the SAME bytes to every other
connection: no re-encoding, no JSON, no per-message task. Each connection has one sender task
draining a bounded queue, so a slow client only ever fills its own queue (and is closed when it
overflows) instead of stalling the room.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Protocol

from pycrdt import Doc

from wire import protocol as p

if TYPE_CHECKING:
    from common.settings import Settings

    from .metrics import Metrics
    from .store import Writer

log = logging.getLogger("inhabit.room")

_CLOSE = object()

CLOSE_GRACE = 2.0
"""Seconds a closing connection gets to take its close frame before its transport is aborted."""

STATE_REQUESTS = 4
"""Full-state requests (SyncStep1, QueryAwareness) one connection may burst; honest peers send one."""
STATE_REQUEST_EVERY = 15.0
"""Seconds that earn one more full-state request (so STATE_REQUESTS a minute, sustained)."""


class Transport(Protocol):
    """What a connection needs of the TCP transport under its websocket (see websocket.transport_of)."""

    def abort(self) -> None: ...
    def is_closing(self) -> bool: ...
    def pause_reading(self) -> None: ...


class Conn:
    """One websocket peer in a room. `send` never blocks; `_run` is its only sender task.

    Everything it can make the server hold is bounded: the send queue in messages AND bytes,
    its awareness ids and their states' size, how often it may ask for the full state.
    """

    __slots__ = ("ws", "transport", "identity", "role", "limit", "limit_bytes", "queued", "queue", "wake",
                 "awareness_ids", "max_ids", "max_state", "closed", "close_args", "denied", "task", "metrics",
                 "requests", "requests_at")

    def __init__(self, ws: Any, transport: Transport, identity: str, role: str, settings: Settings, metrics: Metrics) -> None:
        self.ws = ws
        self.transport = transport
        self.identity = identity  # the token's id: who may reclaim our awareness ids after we leave
        self.role = role
        self.limit = settings.send_queue
        self.limit_bytes = settings.send_queue_bytes
        self.queued = 0  # bytes in `queue` (the one being written is no longer counted)
        self.queue: deque[Any] = deque()
        self.wake = asyncio.Event()
        self.awareness_ids: set[int] = set()
        self.max_ids = settings.awareness_ids
        self.max_state = settings.awareness_bytes
        self.closed = False
        self.close_args: tuple[int, str] | None = None
        self.denied = False
        self.task: asyncio.Task[None] | None = None
        self.metrics = metrics
        self.requests = float(STATE_REQUESTS)  # a token bucket of full-state requests
        self.requests_at = time.monotonic()

    def send(self, msg: bytes) -> None:
        """Queue `msg`; close the connection as too slow if its backlog outgrows the bounds.

        One message is always accepted into an empty queue (a full-state reply may be larger than
        the bound); a BACKLOG past `send_queue_bytes` or `send_queue` messages is not.
        """
        if self.closed:
            return
        queue = self.queue
        queued = self.queued + len(msg)
        if (queued > self.limit_bytes and queue) or len(queue) >= self.limit:
            self.metrics.slow_closed += 1
            queue.clear()
            self.queued = 0
            self.close(p.Close.TOO_SLOW, "send queue overflow: client too slow to keep up, reconnect")
            return
        self.queued = queued
        queue.append(msg)
        self.wake.set()

    def close(self, code: int, reason: str) -> None:
        """Close after what is already queued (so a PermissionDenied or reason still arrives),
        and abort the transport CLOSE_GRACE later whatever happens: a peer that does not read
        would otherwise keep its socket and buffers forever (uvicorn's close waits for a drain)."""
        if self.closed:
            return
        self.closed = True
        self.close_args = (code, reason.encode()[:123].decode(errors="ignore"))
        self.queue.append(_CLOSE)
        self.wake.set()
        self.abort_later()

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
        self.metrics.bad_input += 1
        self.close(p.Close.POLICY, reason)

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def finish(self, peer_left: bool) -> None:
        """Stop the sender and drop the backlog; never waits on a dead peer past CLOSE_GRACE.

        If we are the ones closing, the close frame gets CLOSE_GRACE to go out (`close`
        schedules the abort that follows it); if the peer left, there is nothing to send."""
        task = self.task
        if peer_left:
            if self.close_args is None:  # the peer's close may still wait on a drain that never comes
                self.abort_later()
        else:
            self.close(p.Close.NORMAL, "")
            if task is not None:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(CLOSE_GRACE):
                        await asyncio.shield(task)
        self.closed = True
        if task is not None:
            task.cancel()
        self.queue.clear()
        self.queued = 0

    async def _run(self) -> None:
        ws, queue, wake = self.ws, self.queue, self.wake
        send = ws._send  # raw ASGI send: skips Starlette's per-call state checks on the hot path
        try:
            while True:
                if not queue:
                    wake.clear()
                    await wake.wait()
                    continue
                msg = queue.popleft()
                if msg is _CLOSE:
                    code, reason = self.close_args or (p.Close.NORMAL, "")
                    await ws.close(code, reason)
                    # uvicorn now reads and discards whatever the peer sends, unthrottled, until
                    # the transport closes: a flooder would keep the loop busy parsing it
                    self.transport.pause_reading()
                    return
                self.queued -= len(msg)
                await send({"type": "websocket.send", "bytes": msg})
        except Exception:  # peer gone mid-send: the receive loop will see the disconnect
            self.closed = True
            queue.clear()
            self.queued = 0


ID_GRACE = 30.0
"""Seconds a departed connection's awareness ids stay reserved to its token identity."""

SV_SLACK = 1024
"""State-vector entries a peer may send beyond the clients our document knows."""


def _too_big(text: str, limit: int) -> bool:
    """Whether `text` is over `limit` bytes in UTF-8, without encoding it in the common cases."""
    n = len(text)
    if n > limit:
        return True
    if n <= limit // 4 or text.isascii():  # UTF-8 takes at most 4 bytes a character
        return False
    return len(text.encode()) > limit


class Room:
    """The authoritative copy of one room's document plus who is in it."""

    def __init__(self, name: str, doc: Doc, writer: Writer, metrics: Metrics, stored: int = 0, compact_every: int = 500) -> None:
        self.name = name
        self.doc = doc
        self.writer = writer
        self.metrics = metrics
        self.conns: set[Conn] = set()
        self.states: dict[int, tuple[int, str]] = {}  # awareness: client id -> (clock, JSON)
        self.owners: dict[int, Conn] = {}  # awareness client id -> the connection that first announced it
        self.reserved: dict[int, tuple[str, float]] = {}  # id of a departed owner -> (its identity, until)
        self._states_msg: bytes | None = None  # every awareness state as one message, built once per change
        self.stored = stored
        self.compact_every = compact_every
        self._full_step2: bytes | None = None

    # joining and leaving

    def join(self, conn: Conn) -> None:
        """Greet a newcomer: our SyncStep1, then every awareness state already present."""
        self.conns.add(conn)
        conn.send(p.sync_step1(self.doc.get_state()))
        if self.states:
            conn.send(self._awareness_all())

    def leave(self, conn: Conn) -> None:
        """Forget a connection and tell the others its awareness states are gone.

        Its ids stay reserved for ID_GRACE to the same token identity, so nobody else can take
        over someone's presence in the gap while they reconnect."""
        self.conns.discard(conn)
        gone = []
        owners, reserved = self.owners, self.reserved
        until = time.monotonic() + ID_GRACE
        for cid in conn.awareness_ids:
            if owners.get(cid) is not conn:
                continue
            del owners[cid]
            reserved.pop(cid, None)  # re-insert at the end: the dict stays ordered by expiry
            reserved[cid] = (conn.identity, until)
            entry = self.states.pop(cid, None)
            if entry is not None:
                gone.append((cid, entry[0] + 1, "null"))
        conn.awareness_ids.clear()
        self._expire_reservations()
        if gone:
            self._states_msg = None
            self.broadcast(p.awareness_message(p.encode_awareness(gone)), None)

    def _expire_reservations(self) -> None:
        reserved, now = self.reserved, time.monotonic()
        while reserved:
            cid = next(iter(reserved))
            if reserved[cid][1] > now:
                return
            del reserved[cid]

    # the hot path

    def handle(self, conn: Conn, frame: bytes) -> None:
        """Process one frame from `conn`. Raises ProtocolError on malformed input."""
        if not frame:
            raise p.ProtocolError("empty message")
        kind = frame[0]
        if kind == p.MSG_SYNC:
            sub, payload = p.decode_sync(frame)
            if sub == p.SYNC_STEP1:
                if conn.may_request_state():
                    conn.send(self._step2_for(payload))
                else:
                    conn.policy(f"more than {STATE_REQUESTS} sync requests a minute on one connection")
                return
            if payload == p.EMPTY_UPDATE:
                return
            if conn.role != "edit":
                if not conn.denied:  # say it once, not once per dropped frame
                    conn.denied = True
                    conn.send(p.permission_denied(p.READ_ONLY))
                return
            try:
                self.doc.apply_update(payload)
            except ValueError as exc:
                raise p.ProtocolError(f"malformed update: {exc}") from exc
            self._full_step2 = None
            self.writer.append(self.name, payload)
            self.stored += 1
            if self.stored >= self.compact_every:
                self.compact()
            self.broadcast(frame if sub == p.SYNC_UPDATE else p.sync_update(payload), conn)
        elif kind == p.MSG_AWARENESS:
            self._awareness(conn, frame)
        elif kind == p.MSG_QUERY_AWARENESS:
            if conn.may_request_state():
                conn.send(self._awareness_all())
            else:
                conn.policy(f"more than {STATE_REQUESTS} awareness queries a minute on one connection")
        elif kind == p.MSG_AUTH:
            return  # clients have nothing to tell us here
        else:
            raise p.ProtocolError(f"unknown message type {kind}")

    def broadcast(self, msg: bytes, exclude: Conn | None) -> None:
        n = 0
        for c in self.conns:
            if c is not exclude:
                c.send(msg)
                n += 1
        m = self.metrics
        m.messages_out += n
        m.bytes_out += n * len(msg)

    # helpers

    def _step2_for(self, state: bytes) -> bytes:
        """SyncStep2 for a peer's state vector.

        The full-state reply (to an empty state vector, or one sharing nothing with ours, as any
        newcomer's does) is encoded once per document change and shared by every asker: no
        request can make the room encode or hold its whole state again per connection."""
        if state == b"\x00" or not self._shares_history(state):
            if self._full_step2 is None:
                self._full_step2 = p.sync_step2(self.doc.get_update())
            return self._full_step2
        try:
            return p.sync_step2(self.doc.get_update(state))
        except ValueError as exc:
            raise p.ProtocolError(f"malformed state vector: {exc}") from exc

    def _shares_history(self, state: bytes) -> bool:
        """Whether a peer's state vector claims any of our document (then the diff is smaller)."""
        ours = dict(p.parse_state_vector(self.doc.get_state()))
        limit = len(ours) + SV_SLACK  # a peer knows our clients plus a few of its own, no more
        return any(clock and cid in ours for cid, clock in p.parse_state_vector(state, limit))

    def _awareness(self, conn: Conn, frame: bytes) -> None:
        """Apply an awareness update; a connection may only speak for the client ids it owns.

        A client id belongs to the first live connection that announced it; when that
        connection leaves, the id stays reserved to its token identity for ID_GRACE. Entries
        for ids held by someone else are dropped, so nobody can spoof or remove someone
        else's presence; the rest is applied and echoed. Past its bounds (ids held, bytes per
        state) the connection is closed with 1008.
        """
        entries = p.parse_awareness(p.decode_awareness_payload(frame))
        owners, states = self.owners, self.states
        changed = False
        forged = False
        kept = []
        for entry in entries:
            cid, clock, state = entry
            if _too_big(state, conn.max_state):
                return conn.policy(f"awareness state of {len(state.encode())} bytes exceeds the limit of {conn.max_state} bytes")
            owner = owners.get(cid)
            if owner is not conn:
                if not self._may_claim(conn, cid, owner):
                    forged = True  # someone else's presence: not ours to change
                    continue
                if state == "null" and (owner is None or cid not in states):
                    continue  # removing what nobody holds: nothing to do, nothing to claim
                if len(conn.awareness_ids) >= conn.max_ids:
                    return conn.policy(f"more than {conn.max_ids} awareness client ids on one connection")
                if owner is not None:  # its owner is on its way out: hand the id over
                    owner.awareness_ids.discard(cid)
                self.reserved.pop(cid, None)
                owners[cid] = conn
                conn.awareness_ids.add(cid)
            kept.append(entry)
            cur = states.get(cid)
            if state == "null":
                if cur is not None and clock >= cur[0]:
                    del states[cid]
                    changed = True
            elif cur is None or clock > cur[0]:
                states[cid] = (clock, state)
                changed = True
        if changed:  # like y-websocket: echo to everyone, the sender's renewal keeps it alive
            self._states_msg = None
            self.broadcast(p.awareness_message(p.encode_awareness(kept)) if forged else frame, None)

    def _may_claim(self, conn: Conn, cid: int, owner: Conn | None) -> bool:
        """A free id may be claimed; a departing or departed owner's only by the same identity."""
        if owner is not None:
            return owner.closed and owner.identity == conn.identity
        held = self.reserved.get(cid)
        return held is None or held[0] == conn.identity or held[1] <= time.monotonic()

    def _awareness_all(self) -> bytes:
        if self._states_msg is None:
            entries = [(cid, clock, state) for cid, (clock, state) in self.states.items()]
            self._states_msg = p.awareness_message(p.encode_awareness(entries))
        return self._states_msg

    def compact(self) -> None:
        """Ask the writer to replace this room's stored history by one snapshot."""
        self.writer.snapshot(self.name, self.doc.get_update())
        self.stored = 0
