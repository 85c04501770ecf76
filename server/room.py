"""One room: its pycrdt document and its connections (their awareness states: `server.presence`).

The hot path (`Room.handle`) applies an update once and forwards the SAME bytes to every other
connection: no re-encoding, no JSON, no per-message task; a broadcast even builds its websocket
frame once. Each connection's write buffer is bounded, so a slow client only ever fills its
own (and is closed when it overflows) instead of stalling the room.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from pycrdt import Array, Doc, Map, merge_updates

from canvas import CanvasDoc
from canvas.schema import MESSAGES, STROKES
from wire import protocol as p

from .attribution import SERVER_KINDS, Attribution, actor_of
from .chat import RoomChat, remove_lines, transact
from .conn import STATE_REQUESTS, Conn, binary_frame
from .encoded import EncodedStrokes
from .history import History, has_pending, without_pending
from .presence import Presence
from .settings import DocBounds
from .store import Snapshot
from .widgets import RoomWidgets

if TYPE_CHECKING:

    from .metrics import Metrics
    from .writer import RoomWriter

log = logging.getLogger("inhabit.room")

SV_SLACK = 1024
"""State-vector entries a peer may send beyond the clients our document knows."""


class Room(Presence):
    """The authoritative copy of one room's document plus who is in it."""

    def __init__(self, name: str, doc: Doc, writer: RoomWriter, metrics: Metrics, history: History | None = None,
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
        self.reserved: dict[int, tuple[str, float]] = {}  # id of a departed owner -> (its identity, until)
        self.remote: dict[int, tuple[str, str]] = {}  # cluster: awareness id held on another node -> (identity, node)
        self.attribution = Attribution()
        """Who wrote the recent chat lines; forged agent lines and presence are rewritten."""
        self.chat = RoomChat(self.bounds, doc)
        """The chat's bounds: per link, and the document's share (`server.chat`)."""
        self.widgets = RoomWidgets(self.bounds.widget_doc_bytes, doc)
        """The widgets' bound: count and bytes (`server.widgets`)."""
        self.failed: str | None = None
        """Cluster mode: why this room was dropped (an append failed); its connections are closed."""
        self._states_msg: bytes | None = None  # every awareness state as one message, built once per change
        self._full_step2: bytes | None = None
        self._encoded: EncodedStrokes | None = None

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

    # the hot path

    def handle(self, conn: Conn, frame: bytes) -> None:
        """Process one frame from `conn`. Raises ProtocolError on malformed input."""
        if not frame:
            raise p.ProtocolError("empty message")
        kind = frame[0]
        if kind == p.MSG_SYNC:
            sub, payload = p.decode_sync(frame)
            if sub == p.SYNC_STEP1:
                if conn.may_request_state():  # held while updates it contains are not on disk
                    self.after_commit(conn.send, self._step2_for(payload))
                else:
                    conn.policy(f"more than {STATE_REQUESTS} sync requests a minute on one connection")
                return
            if conn.resyncing:  # dropped: what it sent before reading our SyncStep1, its SyncStep2 carries
                if sub != p.SYNC_STEP2:
                    return
                conn.resyncing = False
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
            self.attribution.watch(self.doc)
            self.widgets.watch(self.doc)
            try:
                self.doc.apply_update(payload)
            except ValueError as exc:
                raise p.ProtocolError(f"malformed update: {exc}") from exc
            if has_pending(payload, self.doc):
                self._drop_pending()
                self._ask_again(conn)
                return
            fix, chat = self.attribution.settle(self.doc, conn.actor)
            fixes = [fix] if fix is not None else []
            if chat:
                fixes.extend(self._charge_chat(conn))
            fixes.extend(self._bound_widgets())
            if not fixes:
                self._accept(payload, frame if sub == p.SYNC_UPDATE else p.sync_update(payload), conn, conn.writer if chat else "")
            else:  # forged agent lines, lines past the link's chat rate, widgets past the room's: others only ever see the
                merged = merge_updates(payload, *fixes)  # fixed update; the sender gets the fix
                self._accept(merged, p.sync_update(merged), conn, conn.writer)
                self.after_commit(conn.send, p.sync_update(merge_updates(*fixes)))
            if chat and self.chat.due(self.doc):
                self.trim_chat()
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
        frame = binary_frame(msg)
        for c in self.conns:
            if c is not exclude:
                c.send(msg, frame)
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
        self._server_edit(lambda: change(CanvasDoc(self.doc)))
        if self.attribution.inserted:
            self.chat.count(self.attribution.inserted)
            if self.chat.due(self.doc):
                self.trim_chat()
        return None

    def _server_edit(self, change: Callable[[], object]) -> bool:
        """Apply `change` as one server transaction, stored and broadcast; whether it changed anything."""
        self.attribution.watch(self.doc)
        try:
            update = transact(self.doc, change)
        finally:
            self.attribution.settle(self.doc, None)
        if update is not None:
            self._accept(update, p.sync_update(update), None)
        return update is not None

    # chat: bounded per link and in the document (`server.chat`)

    def _charge_chat(self, conn: Conn) -> list[bytes]:
        """Charge the lines `conn`'s update inserted to its link; the removal of those past its
        rate, to merge into the update (none for the server's own peers)."""
        inserted = self.attribution.inserted
        if conn.actor.kind in SERVER_KINDS:
            self.chat.count(inserted)
            return []
        over = self.chat.admit(conn.identity if conn.actor.id else f"conn:{id(conn)}", inserted)
        removal = remove_lines(self.doc, over) if over else None
        if over:
            self.metrics.chat_lines_refused += len(over)
            self.attribution.watch(self.doc)  # our removal, not a peer's change
        return [removal] if removal is not None else []

    def _bound_widgets(self) -> list[bytes]:
        """The removal of the widgets a peer's update added past the room's bound, to merge into
        the update (`server.widgets`)."""
        removal, refused = self.widgets.settle(self.doc, self.name)
        if removal is None:
            return []
        self.metrics.widgets_refused += refused
        return [removal]

    def trim_chat(self, keep_lines: int | None = None, keep_bytes: int | None = None) -> int:
        """Move the oldest chat lines out of the document into the store, down to three quarters
        of the chat's bounds (or to `keep_lines`/`keep_bytes`); how many went."""
        b = self.bounds
        lines = b.chat_lines * 3 // 4 if keep_lines is None else keep_lines
        size = b.chat_doc_bytes * 3 // 4 if keep_bytes is None else keep_bytes
        gone: list[tuple[str, str]] = []
        self._server_edit(lambda: gone.extend(self.chat.trim(self.doc, lines, size)))
        self.chat.archive(gone)
        self.metrics.chat_lines_trimmed += len(gone)
        return len(gone)

    def clear_chat(self) -> int:
        """Delete every chat line (an editor's clear: they are not kept); how many there were."""
        array = self.doc.get(MESSAGES, type=Array)
        n = len(array)

        def clear() -> None:
            if len(array):
                del array[0:len(array)]
        self._server_edit(clear)
        self.chat.bytes = 0
        self.metrics.chat_lines_trimmed += n
        return n

    def make_space(self, size: int = 0) -> bool:
        """Free the document for an edit of `size` bytes, chat first: trim it to its bounds, then
        the oldest lines it takes (with a sixteenth of the limit to spare), then all of it,
        compacting after each; whether the edit now fits. An edit that would not fit without any
        chat is refused with the chat left alone."""
        limit = self.bounds.max_doc_bytes
        for step in ("bounds", "enough", "all"):
            over = self.history.doc_bytes + size - limit
            if over <= 0:
                return True
            if step != "bounds" and over > self.chat.bytes:
                return False  # letting the whole chat go would not make room for it
            if step == "bounds":
                trimmed = self.trim_chat()
            else:
                keep = max(0, self.chat.bytes - over - limit // 16) if step == "enough" else 0
                trimmed = self.trim_chat(len(self.doc.get(MESSAGES, type=Array)), keep)
            if trimmed or self.history.bytes:
                self.compact()
        return self.history.doc_bytes + size <= limit

    def loaded(self) -> None:
        """After loading: a room stored with more chat than its bounds, or over its size limit,
        is trimmed now, so it is drawable again (a restart frees a room that filled up)."""
        if self.writer.unavailable is not None:
            return
        if self.chat.due(self.doc):
            self.trim_chat()
        self.make_space()

    def _refusal(self, size: int) -> tuple[int, str] | None:
        """Why an update of `size` bytes may not be applied now, or None."""
        why = self.writer.unavailable
        if why is not None:
            return p.Close.UNAVAILABLE, f"the server cannot save edits right now: {why}; reconnect later"
        limit = self.bounds.max_doc_bytes
        if self.history.doc_bytes + size > limit:
            if self.history.bytes:  # the estimate counts overwritten content too: measure
                self.compact()
            if not self.make_space(size):  # the chat goes first, then the edit is refused
                return p.Close.ROOM_FULL, f"the room's document reached its size limit of {limit} bytes: no more edits"
        return None

    def _accept(self, update: bytes, msg: bytes, sender: Conn | None, writer: str = "") -> None:
        """Store an applied update, then forward it once it is committed (`writer`: who wrote the
        chat lines it inserts, for a cluster's other nodes)."""
        self._full_step2 = None
        if writer:
            self.writer.append(self.name, update, writer)
        else:
            self.writer.append(self.name, update)
        h = self.history
        h.updates += 1
        h.bytes += len(update)
        h.doc_bytes += len(update)
        if h.updates >= self.bounds.compact_every or h.bytes > self.bounds.compact_after(h.snapshot_bytes):
            self.compact()
        self.writer.after_commit(self.broadcast, msg, sender)

    def _ask_again(self, conn: Conn) -> None:
        """An update that depends on updates this room never got. An honest Yjs client sends
        one when its live edits race ahead of the SyncStep2 that carries what the room lacks
        (it reconnected to a node that lost its last updates; y-websocket sends edits as soon
        as the socket opens). Refused and dropped, not fatal: ask for a SyncStep2 and drop what
        the peer sends until it comes. Each refusal costs a rebuild of the document, so a peer
        gets the full-state budget's worth, then is closed as before."""
        if not conn.may_request_state():
            raise p.ProtocolError("update depends on updates this room never received")
        conn.resyncing = True
        conn.send(p.sync_step1(self.doc.get_state()))

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

    # reads

    async def encoded(self) -> EncodedStrokes:
        """The strokes encoded once for HTTP reads, built by the first read, then kept in step
        (again from scratch if the document was replaced); `drop_encoded` when the room goes."""
        view = self._encoded
        if view is None or view.doc is not self.doc or view.broken:
            if view is not None:
                view.close()
            view = self._encoded = EncodedStrokes(self.doc, self.metrics)
        await view.build()
        return view

    def drop_encoded(self) -> None:
        if self._encoded is not None:
            self._encoded.close()
            self._encoded = None

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

    def compact(self) -> None:
        """Ask the writer to replace this room's stored history by one snapshot."""
        self.writer.snapshot(self.name, self.take_snapshot())

    def take_snapshot(self) -> Snapshot:
        """The document encoded once (which also measures it, correcting the running size estimate)."""
        state = self.doc.get_update()
        strokes = len(self.doc.get(STROKES, type=Map))
        self.history = History(doc_bytes=len(state), snapshot_bytes=len(state))
        self._full_step2 = None
        return Snapshot(state, strokes)

    # cluster mode: what the other nodes committed to this room's stream

    def remote_update(self, frame: bytes, writer: str = "") -> None:
        """A sync update another node committed: apply it and forward the same frame to our
        connections (it is committed already: nothing to wait for). `writer`: who wrote the chat
        lines it inserts (that node checked them)."""
        _, update = p.decode_sync(frame)
        self.attribution.watch(self.doc)
        self.doc.apply_update(update)
        self.attribution.settle(self.doc, actor_of(writer), rewrite=False)
        self.chat.count(self.attribution.inserted)
        self._full_step2 = None
        self.history.doc_bytes += len(update)
        self.broadcast(frame, None)
