"""One room: its pycrdt document, its connections and their awareness states.

The hot path (`Room.handle`) applies an update once and forwards the SAME bytes to every other
connection: no re-encoding, no JSON, no per-message task. Each connection has one sender task
draining a bounded queue, so a slow client only ever fills its own queue (and is closed when it
overflows) instead of stalling the room.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pycrdt import Doc, Map

from canvas import CanvasDoc
from canvas.schema import STROKES
from wire import protocol as p

from .history import DocBounds, History, has_pending, without_pending
from .store import Snapshot

if TYPE_CHECKING:
    from .metrics import Metrics
    from .writer import Writer

log = logging.getLogger("inhabit.room")

_CLOSE = object()


class Conn:
    """One websocket peer in a room. `send` never blocks; `run` is its only sender task."""

    __slots__ = ("ws", "role", "limit", "queue", "wake", "awareness_ids", "closed", "close_args", "denied", "task", "metrics")

    def __init__(self, ws: Any, role: str, limit: int, metrics: Metrics) -> None:
        self.ws = ws
        self.role = role
        self.limit = limit
        self.queue: deque[Any] = deque()
        self.wake = asyncio.Event()
        self.awareness_ids: set[int] = set()
        self.closed = False
        self.close_args: tuple[int, str] | None = None
        self.denied = False
        self.task: asyncio.Task[None] | None = None
        self.metrics = metrics

    def send(self, msg: bytes) -> None:
        if self.closed:
            return
        if len(self.queue) >= self.limit:
            self.metrics.slow_closed += 1
            self.queue.clear()
            self.close(p.Close.TOO_SLOW, "send queue overflow: client too slow to keep up, reconnect")
            return
        self.queue.append(msg)
        self.wake.set()

    def close(self, code: int, reason: str) -> None:
        """Close after what is already queued (so a PermissionDenied or reason still arrives)."""
        if self.closed:
            return
        self.closed = True
        self.close_args = (code, reason.encode()[:123].decode(errors="ignore"))
        self.queue.append(_CLOSE)
        self.wake.set()

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run())

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
                    return
                await send({"type": "websocket.send", "bytes": msg})
        except Exception:  # peer gone mid-send: the receive loop will see the disconnect
            self.closed = True
            queue.clear()


class Room:
    """The authoritative copy of one room's document plus who is in it."""

    def __init__(self, name: str, doc: Doc, writer: Writer, metrics: Metrics, history: History | None = None,
                 bounds: DocBounds | None = None) -> None:
        self.name = name
        self.doc = doc
        self.writer = writer
        self.metrics = metrics
        self.conns: set[Conn] = set()
        self.states: dict[int, tuple[int, str]] = {}  # awareness: client id -> (clock, JSON)
        self.owners: dict[int, Conn] = {}  # awareness client id -> the connection that first announced it
        self.history = history or History()
        self.bounds = bounds or DocBounds()
        self._full_step2: bytes | None = None

    @property
    def stored(self) -> int:
        """Update rows stored since the last snapshot."""
        return self.history.updates

    # joining and leaving

    def join(self, conn: Conn) -> None:
        """Greet a newcomer: our SyncStep1, then every awareness state already present."""
        self.conns.add(conn)
        conn.send(p.sync_step1(self.doc.get_state()))
        if self.states:
            conn.send(self._awareness_all())

    def leave(self, conn: Conn) -> None:
        """Forget a connection and tell the others its awareness states are gone."""
        self.conns.discard(conn)
        gone = []
        owners = self.owners
        for cid in conn.awareness_ids:
            if owners.get(cid) is not conn:
                continue
            del owners[cid]
            entry = self.states.pop(cid, None)
            if entry is not None:
                gone.append((cid, entry[0] + 1, "null"))
        conn.awareness_ids.clear()
        if gone:
            self.broadcast(p.awareness_message(p.encode_awareness(gone)), None)

    # the hot path

    def handle(self, conn: Conn, frame: bytes) -> None:
        """Process one frame from `conn`. Raises ProtocolError on malformed input."""
        if not frame:
            raise p.ProtocolError("empty message")
        kind = frame[0]
        if kind == p.MSG_SYNC:
            sub, payload = p.decode_sync(frame)
            if sub == p.SYNC_STEP1:  # held while updates it contains are not on disk
                self.after_commit(conn.send, self._step2_for(payload))
                return
            if payload == p.EMPTY_UPDATE:
                return
            if conn.role != "edit":
                if not conn.denied:  # say it once, not once per dropped frame
                    conn.denied = True
                    conn.send(p.permission_denied(p.READ_ONLY))
                return
            refusal = self._refusal(len(payload))
            if refusal is not None:
                conn.close(*refusal)
                return
            try:
                self.doc.apply_update(payload)
            except ValueError as exc:
                raise p.ProtocolError(f"malformed update: {exc}") from exc
            if has_pending(payload, self.doc):
                self._drop_pending()
                raise p.ProtocolError("update depends on updates this room never received")
            self._accept(payload, frame if sub == p.SYNC_UPDATE else p.sync_update(payload), conn)
        elif kind == p.MSG_AWARENESS:
            self._awareness(conn, frame)
        elif kind == p.MSG_QUERY_AWARENESS:
            conn.send(self._awareness_all())
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

    # durability: what the store holds decides what anybody sees

    def after_commit(self, fn: Callable[..., object], *args: object) -> None:
        """Run `fn(*args)` once every update applied so far is committed (at once if it is).

        Anything that shows the document to a peer (a broadcast, a SyncStep2) goes through
        here, so a crash can never lose an edit that somebody has already seen.
        """
        self.writer.after_commit(fn, *args)

    def edit(self, change: Callable[[CanvasDoc], object]) -> tuple[int, str] | None:
        """A server-side edit (e.g. a restore): one transaction, stored and broadcast to every
        peer like a peer's update. Returns the refusal (close code, reason) if the room takes
        no edits now; `after_commit` tells when it is saved."""
        refusal = self._refusal(0)
        if refusal is not None:
            return refusal
        updates: list[bytes] = []
        sub = self.doc.observe(lambda event: updates.append(event.update))
        try:
            change(CanvasDoc(self.doc))
        finally:
            self.doc.unobserve(sub)
        for update in updates:
            self._accept(update, p.sync_update(update), None)
        return None

    def _refusal(self, size: int) -> tuple[int, str] | None:
        """Why an update of `size` bytes may not be applied now, or None."""
        why = self.writer.unavailable
        if why is not None:
            return p.Close.UNAVAILABLE, f"the server cannot save edits right now: {why}; reconnect later"
        limit = self.bounds.max_doc_bytes
        if self.history.doc_bytes + size > limit:
            if self.history.bytes:  # the estimate counts overwritten content too: measure
                self.compact()
            if self.history.doc_bytes + size > limit:
                return p.Close.ROOM_FULL, f"the room's document reached its size limit of {limit} bytes: no more edits"
        return None

    def _accept(self, update: bytes, msg: bytes, sender: Conn | None) -> None:
        """Store an applied update, then forward it once it is committed."""
        self._full_step2 = None
        self.writer.append(self.name, update)
        h = self.history
        h.updates += 1
        h.bytes += len(update)
        h.doc_bytes += len(update)
        if h.updates >= self.bounds.compact_every or h.bytes > self.bounds.compact_after(h.snapshot_bytes):
            self.compact()
        self.writer.after_commit(self.broadcast, msg, sender)

    def _drop_pending(self) -> None:
        """Forget an update whose dependencies are missing: the document still holds it as
        "pending" (and would hand it to joiners), so rebuild the document without it."""
        try:
            self.doc = without_pending(self.doc)
        except BaseException as exc:  # a Rust panic is a BaseException: keep the room going
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            log.error("room %s: could not drop a pending update: %s", self.name, exc)
        self._full_step2 = None

    # helpers

    def _step2_for(self, state: bytes) -> bytes:
        """SyncStep2 for a peer's state vector; the full-state reply is cached for joiners."""
        if state == b"\x00":
            if self._full_step2 is None:
                self._full_step2 = p.sync_step2(self.doc.get_update())
            return self._full_step2
        try:
            return p.sync_step2(self.doc.get_update(state))
        except ValueError as exc:
            raise p.ProtocolError(f"malformed state vector: {exc}") from exc

    def _awareness(self, conn: Conn, frame: bytes) -> None:
        """Apply an awareness update; a connection may only speak for the client ids it owns.

        A client id belongs to the first live connection that announced it (until that
        connection leaves). Entries for ids owned by another live connection are dropped, so
        nobody can spoof or remove someone else's presence; the rest is applied and echoed.
        """
        entries = p.parse_awareness(p.decode_awareness_payload(frame))
        owners, states = self.owners, self.states
        changed = False
        forged = False
        kept = []
        for entry in entries:
            cid, clock, state = entry
            owner = owners.get(cid)
            if owner is not conn:
                if owner is not None and not owner.closed:
                    forged = True  # someone else's presence: not ours to change
                    continue
                if state == "null" and (owner is None or cid not in states):
                    continue  # removing what nobody holds: nothing to do, nothing to claim
                if owner is not None:  # its owner is on its way out: hand the id over
                    owner.awareness_ids.discard(cid)
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
            self.broadcast(p.awareness_message(p.encode_awareness(kept)) if forged else frame, None)

    def _awareness_all(self) -> bytes:
        entries = [(cid, clock, state) for cid, (clock, state) in self.states.items()]
        return p.awareness_message(p.encode_awareness(entries))

    def compact(self) -> None:
        """Ask the writer to replace this room's stored history by one snapshot (also measures
        the document, correcting the running size estimate)."""
        state = self.doc.get_update()
        strokes = len(self.doc.get(STROKES, type=Map))
        self.writer.snapshot(self.name, Snapshot(state, strokes))
        self.history = History(doc_bytes=len(state), snapshot_bytes=len(state))
        self._full_step2 = None
