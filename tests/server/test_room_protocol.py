"""The room's protocol handling, durability order and awareness ownership, in process: milliseconds, no server.

`server.room.Room` is driven directly with a pycrdt Doc, a `ManualWriter` whose commits the
test triggers (or a real `server.writer.Writer` over a tmp `Store`), `server.metrics.Metrics`
and `server.conn.Conn`s over a `FakeTransport` that keeps every frame the room writes, unread,
until the test takes it (so its write buffer fills like a peer's that stopped reading). Frames are built the way clients build them: pycrdt
documents and awareness, `wire.protocol` encoders. Closing a connection schedules the abort of
its transport on the running loop, so the tests that close one are async.
The real-server versions of these scenarios are in test_rooms.py, test_access.py,
test_bad_input.py, test_awareness_ownership.py and test_hostile_connections.py.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pycrdt import Awareness, Doc, Map, write_var_uint

import server.conn as conn_module
import server.presence as presence_module
from server.conn import STATE_REQUESTS, Conn
from server.metrics import Metrics
from server.presence import ID_GRACE
from server.room import Room
from server.settings import MIN_COMPACT_BYTES, ConnectionLimits, DocBounds
from server.store import Snapshot, Store
from server.writer import Writer
from wire import protocol as p

pytestmark = pytest.mark.timeout(30)

ROOM = "r"


class ManualWriter:
    """The room's writer, committing only when the test calls `commit()`.

    Keeps `server.writer.Writer`'s contract: `after_commit(fn, *args)` runs `fn` at once when
    nothing is waiting to be committed, else at the next commit, callbacks in order.
    `appends`, `snapshots` and `shared` (presence) record everything ever queued, in order.
    """

    def __init__(self) -> None:
        self.appends: list[tuple[str, bytes]] = []
        self.snapshots: list[tuple[str, Snapshot]] = []
        self.shared: list[tuple[str, bytes, str]] = []  # presence changes (cluster mode shares them)
        self.uncommitted = 0
        self.waiting: list[tuple[Callable[..., object], tuple[object, ...]]] = []
        self.unavailable: str | None = None

    def append(self, room: str, update: bytes) -> None:
        self.appends.append((room, update))
        self.uncommitted += 1

    def snapshot(self, room: str, snap: Snapshot) -> None:
        self.snapshots.append((room, snap))
        self.uncommitted += 1

    def presence(self, room: str, msg: bytes, identity: str) -> None:
        self.shared.append((room, msg, identity))

    def after_commit(self, fn: Callable[..., object], *args: object) -> None:
        if self.uncommitted:
            self.waiting.append((fn, args))
        else:
            fn(*args)

    def commit(self) -> None:
        """Everything queued so far is on disk: run what waited for it."""
        self.uncommitted = 0
        waiting, self.waiting = self.waiting, []
        for fn, args in waiting:
            fn(*args)


class FakeTransport:
    """The TCP transport under a connection's websocket: keeps what is written until `take`
    reads it (the peer's reading), and records the abort."""

    def __init__(self) -> None:
        self.aborted = False
        self.frames: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.frames.append(data)

    def get_write_buffer_size(self) -> int:
        return sum(map(len, self.frames))

    def abort(self) -> None:
        self.aborted = True

    def is_closing(self) -> bool:
        return self.aborted

    def pause_reading(self) -> None:
        pass


class FakeWebSocket:
    """The ASGI side of a connection: records the close frame sent through it."""

    def __init__(self) -> None:
        self.closed_with: tuple[int, str] | None = None

    async def close(self, code: int, reason: str) -> None:
        self.closed_with = (code, reason)


def payload(frame: bytes) -> bytes:
    """The message in one unmasked binary websocket frame (RFC 6455 section 5.2)."""
    assert frame[0] == 0x82, frame[:2]  # FIN + binary
    n = frame[1] & 0x7F
    start = 2 if n < 126 else 4 if n == 126 else 10
    return frame[start:]


def new_room(bounds: DocBounds | None = None) -> tuple[Room, ManualWriter]:
    writer = ManualWriter()
    return Room(ROOM, Doc(), writer, Metrics(), bounds=bounds), writer  # type: ignore[arg-type]


_identities = itertools.count(1)


def new_conn(role: str = "edit", identity: str | None = None, metrics: Metrics | None = None, **settings: Any) -> Conn:
    """A connection over a FakeTransport; every token its own identity unless told."""
    who = identity or f"token-{next(_identities)}"
    return Conn(FakeWebSocket(), FakeTransport(), who, role, ConnectionLimits(**settings), metrics or Metrics())


def join(room: Room, role: str = "edit", identity: str | None = None, **settings: Any) -> Conn:
    """A connection that joined `room`; what it is sent stays in its transport until taken."""
    conn = new_conn(role, identity, room.metrics, **settings)
    room.join(conn)
    return conn


def take(conn: Conn) -> list[bytes]:
    """The messages written to `conn` since the last take, read as its peer would."""
    frames = conn.transport.frames
    conn.transport.frames = []
    return [payload(f) for f in frames]


def closed_with(conn: Conn) -> tuple[int, str]:
    """The close code and reason of a closed connection (what its close frame will carry)."""
    assert conn.closed and conn.close_args is not None and conn.closing is not None
    return conn.close_args


def sync(frame: bytes) -> tuple[int, bytes]:
    assert frame[0] == p.MSG_SYNC, frame
    return p.decode_sync(frame)


def entries(frame: bytes) -> list[tuple[int, int, str]]:
    assert frame[0] == p.MSG_AWARENESS, frame
    return p.parse_awareness(p.decode_awareness_payload(frame))


def aware(items: list[tuple[int, int, str]]) -> bytes:
    return p.awareness_message(p.encode_awareness(items))


def change(doc: Doc, **items: Any) -> bytes:
    """The update a client sends after setting `items` in its map "m" in one transaction."""
    got: list[bytes] = []
    sub = doc.observe(lambda event: got.append(event.update))
    with doc.transaction():
        m = doc.get("m", type=Map)
        for key, value in items.items():
            m[key] = value
    doc.unobserve(sub)
    assert len(got) == 1
    return got[0]


def content(doc: Doc) -> dict[str, Any]:
    return dict(doc.get("m", type=Map))


def doc_of(*updates: bytes) -> Doc:
    doc = Doc()
    for u in updates:
        doc.apply_update(u)
    return doc


class Presence:
    """A client's awareness (pycrdt's), and the frame it would send for its local state."""

    def __init__(self, name: str) -> None:
        self.aw = Awareness(Doc())
        self.id = self.aw.client_id
        self.set({"user": {"name": name}})

    def set(self, state: dict[str, Any]) -> bytes:
        self.aw.set_local_state(state)
        return self.frame()

    def frame(self) -> bytes:
        return p.awareness_message(self.aw.encode_awareness_update([self.id]))

    @property
    def clock(self) -> int:
        return self.aw.meta[self.id]["clock"]


def state_json(frame: bytes) -> str:
    """The JSON text of the (single) state in an awareness frame, as the room stores it."""
    (_, _, text), = entries(frame)
    return text


# ---- joining and syncing -------------------------------------------------------------------


def test_join_in_an_empty_room_greets_with_sync_step1_only():
    room, _ = new_room()
    conn = join(room)
    frames = take(conn)
    assert len(frames) == 1
    assert sync(frames[0]) == (p.SYNC_STEP1, room.doc.get_state())
    assert room.conns == {conn}


def test_join_greets_with_sync_step1_and_the_current_awareness():
    room, writer = new_room()
    a, b = join(room), join(room, "view")
    room.handle(a, p.sync_update(change(Doc(), k=1)))
    writer.commit()
    alice, bob = Presence("alice"), Presence("bob")
    room.handle(a, alice.frame())
    room.handle(b, bob.frame())
    newcomer = join(room)
    frames = take(newcomer)
    assert len(frames) == 2
    sub, state = sync(frames[0])
    assert sub == p.SYNC_STEP1 and state == room.doc.get_state() and state != b"\x00"
    assert sorted(entries(frames[1])) == sorted([(alice.id, 1, state_json(alice.frame())), (bob.id, 1, state_json(bob.frame()))])


def test_sync_step1_gets_sync_step2_with_exactly_the_missing_state():
    room, writer = new_room()
    editor, other = join(room), join(room)
    client = Doc()
    u1 = change(client, k1=1)
    u2 = change(client, k2=2)
    room.handle(editor, p.sync_update(u1))
    room.handle(editor, p.sync_update(u2))
    writer.commit()
    take(editor)
    take(other)
    stored = list(writer.appends)

    peer = doc_of(u1)  # has k1, lacks k2
    room.handle(other, p.sync_step1(peer.get_state()))
    (reply,) = take(other)  # everything is committed: answered at once
    sub, missing = sync(reply)
    assert sub == p.SYNC_STEP2
    assert content(doc_of(missing)) == {"k2": 2}  # what the peer lacked, not what it had
    peer.apply_update(missing)
    assert content(peer) == {"k1": 1, "k2": 2} and peer.get_state() == room.doc.get_state()
    # answering is not writing: nothing stored, nobody else told
    assert writer.appends == stored and writer.uncommitted == 0 and take(editor) == []


def test_an_empty_peer_gets_everything_and_the_cached_answer_follows_updates():
    room, writer = new_room()
    editor, peer, another = join(room), join(room), join(room)
    client = Doc()
    room.handle(editor, p.sync_update(change(client, a=1)))
    writer.commit()
    take(peer)
    take(another)
    room.handle(peer, p.sync_step1(Doc().get_state()))
    room.handle(another, p.sync_step1(Doc().get_state()))
    (reply,) = take(peer)
    assert take(another) == [reply]
    assert content(doc_of(sync(reply)[1])) == {"a": 1}
    room.handle(editor, p.sync_update(change(client, b=2)))
    writer.commit()
    take(peer)
    room.handle(peer, p.sync_step1(Doc().get_state()))
    (reply,) = take(peer)
    assert content(doc_of(sync(reply)[1])) == {"a": 1, "b": 2}


# ---- updates -------------------------------------------------------------------------------


def test_an_editors_update_is_applied_stored_and_forwarded_to_the_others_only():
    room, writer = new_room()
    a, b, viewer = join(room), join(room), join(room, "view")
    for c in (a, b, viewer):
        take(c)
    update = change(Doc(), k="v")
    frame = p.sync_update(update)
    room.handle(a, frame)
    assert content(room.doc) == {"k": "v"}
    assert writer.appends == [(ROOM, update)] and writer.snapshots == []
    assert room.stored == 1
    writer.commit()
    assert take(b) == [frame] and take(viewer) == [frame]
    assert take(a) == []  # no echo to the sender
    assert room.metrics.messages_out == 2 and room.metrics.bytes_out == 2 * len(frame)


def test_a_sync_step2_from_an_editor_is_applied_and_forwarded_as_an_update():
    room, writer = new_room()
    a, b = join(room), join(room)
    take(b)
    offline = change(Doc(), made="offline")
    room.handle(a, p.sync_step2(offline))
    assert content(room.doc) == {"made": "offline"}
    assert writer.appends == [(ROOM, offline)]
    writer.commit()
    assert take(b) == [p.sync_update(offline)]


def test_an_empty_update_changes_stores_and_sends_nothing():
    room, writer = new_room()
    a, b, viewer = join(room), join(room), join(room, "view")
    for c in (a, b, viewer):
        take(c)
    before = room.doc.get_update()
    for conn in (a, viewer):  # what clients with an empty document send as their SyncStep2
        room.handle(conn, p.sync_step2(p.EMPTY_UPDATE))
    assert room.doc.get_update() == before and writer.appends == [] and room.stored == 0
    writer.commit()
    assert take(a) == [] and take(b) == [] and take(viewer) == []  # no PermissionDenied either


def test_compaction_replaces_the_history_every_n_updates():
    room, writer = new_room(DocBounds(compact_every=3))
    a = join(room)
    client = Doc()
    for i in range(3):
        room.handle(a, p.sync_update(change(client, **{f"k{i}": i})))
    assert len(writer.appends) == 3 and len(writer.snapshots) == 1
    name, snap = writer.snapshots[0]
    assert name == ROOM and content(doc_of(snap.data)) == {"k0": 0, "k1": 1, "k2": 2}
    assert snap.strokes == 0  # no strokes in this document
    assert room.stored == 0 and room.history.bytes == 0
    assert room.history.doc_bytes == room.history.snapshot_bytes == len(snap.data)  # measured, not estimated
    room.handle(a, p.sync_update(change(client, k3=3)))
    assert len(writer.snapshots) == 1 and room.stored == 1


def test_compaction_once_the_updates_outweigh_the_snapshot():
    room, writer = new_room(DocBounds(compact_every=10_000))
    a = join(room)
    client = Doc()
    room.handle(a, p.sync_update(change(client, small=1)))
    assert writer.snapshots == []  # a few bytes: cheaper to keep than a snapshot
    big = change(client, big="x" * (2 * MIN_COMPACT_BYTES))
    room.handle(a, p.sync_update(big))  # past MIN_COMPACT_BYTES of updates: squash
    assert len(writer.snapshots) == 1 and room.stored == 0
    snapshot_bytes = room.history.snapshot_bytes
    assert snapshot_bytes == len(writer.snapshots[0][1].data) > 2 * MIN_COMPACT_BYTES
    half = snapshot_bytes // 2 + 512  # each more than MIN_COMPACT_BYTES: the snapshot sets the bar
    room.handle(a, p.sync_update(change(client, h1="y" * half)))
    assert len(writer.snapshots) == 1 and room.stored == 1  # the updates weigh less than the snapshot
    room.handle(a, p.sync_update(change(client, h2="z" * half)))
    assert len(writer.snapshots) == 2 and room.stored == 0  # now they outweigh it
    assert content(doc_of(writer.snapshots[1][1].data)) == content(room.doc)


def test_compaction_after_compact_bytes_of_updates():
    room, writer = new_room(DocBounds.model_construct(compact_every=10_000, compact_bytes=1000))  # below the flag's bound, on purpose
    a = join(room)
    client = Doc()
    room.handle(a, p.sync_update(change(client, k0="x" * 600)))
    assert writer.snapshots == [] and room.history.bytes > 600
    room.handle(a, p.sync_update(change(client, k1="x" * 600)))
    assert len(writer.snapshots) == 1 and room.stored == 0


class SeenBy:
    """Wraps a room's broadcast: as each frame goes out, record what the store held then."""

    def __init__(self, room: Room, store: Store) -> None:
        self.stored_then: list[list[bytes]] = []
        broadcast = room.broadcast

        def record(msg: bytes, exclude: Conn | None) -> None:
            self.stored_then.append([r.data for r in store.load(ROOM)])
            broadcast(msg, exclude)

        room.broadcast = record  # type: ignore[method-assign]


async def test_a_real_writer_commits_small_updates_before_forwarding_them(tmp_path: Path):
    """Small updates are committed on the spot (no task hop), and only then forwarded."""
    store = Store(tmp_path / "room.db")
    writer = Writer(store)
    writer.start()
    try:
        room = Room(ROOM, Doc(), writer, Metrics())
        a, b = join(room), join(room)
        take(b)
        seen = SeenBy(room, store)
        updates = [change(Doc(), **{f"k{i}": i}) for i in range(3)]
        for update in updates:
            room.handle(a, p.sync_update(update))
        assert take(b) == [p.sync_update(u) for u in updates] and not writer.holds(ROOM)
        assert seen.stored_then == [updates[:1], updates[:2], updates[:3]]  # each one on disk before anybody saw it
    finally:
        await writer.close()
        store.close()


async def test_a_snapshot_holds_later_updates_until_the_writer_commits_it(tmp_path: Path):
    store = Store(tmp_path / "room.db")
    writer = Writer(store)  # not started: what the task commits waits for close()
    room = Room(ROOM, Doc(), writer, Metrics(), bounds=DocBounds(compact_every=2))
    a, b = join(room), join(room)
    take(b)
    client = Doc()
    frames = [p.sync_update(change(client, **{f"k{i}": i})) for i in range(3)]
    for frame in frames:
        room.handle(a, frame)
    # k0 was committed on the spot; k1 made a snapshot (the task's job), so k1 and k2 wait
    assert take(b) == frames[:1] and writer.holds(ROOM)
    await writer.close()
    assert take(b) == frames[1:]
    rows = store.load(ROOM)
    assert [r.kind for r in rows] == ["snapshot", "update"]  # k0 and k1 squashed into the snapshot, k2 after it
    assert content(doc_of(*(r.data for r in rows))) == {"k0": 0, "k1": 1, "k2": 2} == content(room.doc)
    store.close()


# ---- durability: nobody sees what is not on disk -------------------------------------------


def test_an_editors_update_is_forwarded_only_once_committed():
    room, writer = new_room()
    a, b, viewer = join(room), join(room), join(room, "view")
    for c in (a, b, viewer):
        take(c)
    update = change(Doc(), k="v")
    frame = p.sync_update(update)
    room.handle(a, frame)
    assert content(room.doc) == {"k": "v"} and writer.appends == [(ROOM, update)]  # applied and queued...
    assert take(b) == [] and take(viewer) == [] and room.metrics.messages_out == 0  # ...but not shown
    writer.commit()
    (got,) = take(b)
    assert got == frame and take(viewer) == [frame]  # the very bytes the editor sent
    assert take(a) == [] and room.metrics.messages_out == 2


def test_updates_committed_together_are_forwarded_in_order():
    room, writer = new_room()
    a, b = join(room), join(room)
    take(b)
    client = Doc()
    frames = [p.sync_update(change(client, **{f"k{i}": i})) for i in range(4)]
    for frame in frames:
        room.handle(a, frame)
    assert take(b) == []
    writer.commit()
    assert take(b) == frames
    writer.commit()  # nothing more was waiting
    assert take(b) == []


def test_a_sync_step2_reply_is_held_while_an_update_it_contains_is_uncommitted():
    room, writer = new_room()
    editor, behind, empty = join(room), join(room), join(room)
    client = Doc()
    u1 = change(client, k1=1)
    room.handle(editor, p.sync_update(u1))
    writer.commit()
    for c in (editor, behind, empty):
        take(c)
    u2 = change(client, k2=2)
    room.handle(editor, p.sync_update(u2))  # applied, not committed
    room.handle(behind, p.sync_step1(doc_of(u1).get_state()))
    room.handle(empty, p.sync_step1(Doc().get_state()))
    assert take(behind) == [] and take(empty) == []  # the answers would show k2: held
    writer.commit()
    for conn, expected in ((behind, {"k2": 2}), (empty, {"k1": 1, "k2": 2})):
        forwarded, reply = take(conn)
        assert forwarded == p.sync_update(u2)
        sub, state = sync(reply)
        assert sub == p.SYNC_STEP2 and content(doc_of(state)) == expected
    assert take(editor) == []


def test_a_viewers_updates_are_dropped_with_one_permission_denied():
    room, writer = new_room()
    editor, viewer = join(room), join(room, "view")
    take(editor)
    take(viewer)
    before = room.doc.get_update()
    client = Doc()
    for i in range(5):
        update = change(client, **{f"v{i}": i})
        room.handle(viewer, p.sync_update(update) if i % 2 else p.sync_step2(update))
    assert room.doc.get_update() == before and content(room.doc) == {}
    assert writer.appends == [] and room.stored == 0
    writer.commit()
    assert take(editor) == []
    assert take(viewer) == [p.permission_denied(p.READ_ONLY)]
    assert not viewer.closed  # a viewer stays and may still read
    room.handle(viewer, p.sync_step1(client.get_state()))
    (reply,) = take(viewer)
    assert sync(reply)[0] == p.SYNC_STEP2


# ---- malformed frames ----------------------------------------------------------------------

BAD_UTF8 = write_var_uint(1) + write_var_uint(7) + write_var_uint(1) + write_var_uint(2) + b"\xff\xfe"

MALFORMED = [
    ("empty", b"", "empty message"),
    ("unknown type", bytes([9, 0]), "unknown message type 9"),
    ("sync without subtype", bytes([p.MSG_SYNC]), "truncated sync message"),
    ("bad sync subtype", bytes([p.MSG_SYNC, 7, 0]), "unknown sync message type 7"),
    ("truncated varuint", bytes([p.MSG_SYNC, p.SYNC_UPDATE, 0xFF, 0xFF]), "truncated varuint"),
    ("varuint too long", bytes([p.MSG_SYNC, p.SYNC_UPDATE]) + b"\xff" * 10 + b"\x01", "varuint too long"),
    ("truncated payload", bytes([p.MSG_SYNC, p.SYNC_UPDATE, 5, 1, 2]), "truncated message payload"),
    ("bad update bytes", p.sync_update(b"\x01\x02\x03\x04\x05"), "malformed update"),
    ("bad state vector", p.sync_step1(b"\xff\xff"), "truncated varuint"),  # our parser sees it before yrs
    ("state vector too long", p.sync_step1(write_var_uint(2000)), "state vector of 2000 entries exceeds the limit"),
    ("truncated awareness frame", bytes([p.MSG_AWARENESS, 3, 5, 1]), "truncated message payload"),
    ("truncated awareness entry", p.awareness_message(b"\x01\x05"), "truncated varuint"),
    ("awareness state not UTF-8", p.awareness_message(BAD_UTF8), "not UTF-8"),
    ("too many awareness entries", p.awareness_message(write_var_uint(200_000)), "too many awareness entries"),
]


@pytest.mark.parametrize("frame, reason", [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_malformed_frames_raise_protocol_error_and_change_nothing(frame: bytes, reason: str):
    room, writer = new_room()
    offender, other = join(room), join(room)
    room.handle(other, p.sync_update(change(Doc(), keep=1)))
    writer.commit()
    take(offender)
    take(other)
    before = room.doc.get_update()
    with pytest.raises(p.ProtocolError, match=reason):
        room.handle(offender, frame)
    writer.commit()
    assert room.doc.get_update() == before and len(writer.appends) == 1
    assert take(other) == [] and room.states == {} and room.owners == {}


def test_auth_messages_from_clients_are_ignored():
    room, writer = new_room()
    a, b = join(room), join(room)
    take(a)
    take(b)
    room.handle(a, p.permission_denied("I deny you"))
    writer.commit()
    assert take(a) == [] and take(b) == [] and writer.appends == []


# ---- awareness -----------------------------------------------------------------------------


def test_awareness_states_are_stored_and_echoed_to_everyone():
    room, writer = new_room()
    a, viewer = join(room), join(room, "view")
    take(a)
    take(viewer)
    alice = Presence("alice")
    first = alice.frame()
    room.handle(a, first)
    assert room.states == {alice.id: (1, state_json(first))}
    assert room.owners == {alice.id: a} and a.awareness_ids == {alice.id}
    assert take(a) == [first] and take(viewer) == [first]  # the sender too: it keeps its state alive

    moved = alice.set({"user": {"name": "alice"}, "cursor": {"x": 1, "y": 2}})
    room.handle(a, moved)
    assert room.states[alice.id] == (2, state_json(moved)) and json.loads(state_json(moved))["cursor"] == {"x": 1, "y": 2}
    assert take(a) == [moved] and take(viewer) == [moved]

    room.handle(a, first)  # stale: an older clock changes nothing and is not echoed
    assert room.states[alice.id] == (2, state_json(moved))
    assert take(a) == [] and take(viewer) == []

    bob = Presence("bob")  # viewers have presence too
    room.handle(viewer, bob.frame())
    assert room.owners[bob.id] is viewer and take(a) == [bob.frame()]
    assert writer.appends == [] and writer.snapshots == []  # presence is never stored


def test_query_awareness_answers_the_asker_with_every_state():
    room, _ = new_room()
    a, b, asker = join(room), join(room), join(room)
    alice, bob = Presence("alice"), Presence("bob")
    room.handle(a, alice.frame())
    room.handle(b, bob.frame())
    for c in (a, b, asker):
        take(c)
    room.handle(asker, bytes([p.MSG_QUERY_AWARENESS]))
    (reply,) = take(asker)
    assert sorted(entries(reply)) == sorted([(alice.id, 1, state_json(alice.frame())), (bob.id, 1, state_json(bob.frame()))])
    assert take(a) == [] and take(b) == []


def test_a_connection_cannot_update_or_remove_an_id_another_live_connection_owns():
    room, _ = new_room()
    a, mallory, c = join(room), join(room), join(room)
    alice = Presence("alice")
    room.handle(a, alice.frame())
    genuine = room.states[alice.id]
    for conn in (a, mallory, c):
        take(conn)

    forged = json.dumps({"user": {"name": "mallory"}})
    room.handle(mallory, aware([(alice.id, 100, forged)]))  # spoof
    room.handle(mallory, aware([(alice.id, 200, "null")]))  # remove
    assert room.states == {alice.id: genuine} and room.owners == {alice.id: a}
    assert take(a) == [] and take(c) == [] and take(mallory) == []  # nothing changed, nothing sent

    own = json.dumps({"user": {"name": "mallory"}, "cursor": {"x": 5, "y": 5}})
    room.handle(mallory, aware([(alice.id, 300, "null"), (4242, 1, own), (alice.id, 301, forged)]))  # mixed
    assert room.states == {alice.id: genuine, 4242: (1, own)}
    assert room.owners == {alice.id: a, 4242: mallory} and mallory.awareness_ids == {4242}
    for conn in (a, c, mallory):  # the forged entries are cut out, the sender's own kept
        (frame,) = take(conn)
        assert entries(frame) == [(4242, 1, own)]

    # the owner still speaks for itself
    moved = alice.set({"user": {"name": "alice"}, "cursor": {"x": 7, "y": 8}})
    room.handle(a, moved)
    assert room.states[alice.id] == (alice.clock, state_json(moved))


def test_removing_an_id_nobody_holds_claims_nothing():
    room, _ = new_room()
    a, b = join(room), join(room)
    take(a)
    take(b)
    room.handle(b, aware([(777, 5, "null")]))
    assert room.owners == {} and b.awareness_ids == set() and room.states == {}
    assert take(a) == [] and take(b) == []
    state = json.dumps({"user": {"name": "a"}})
    room.handle(a, aware([(777, 1, state)]))  # so the id is still free for anyone
    assert room.owners == {777: a} and room.states == {777: (1, state)}


def test_an_owner_removes_its_own_state_and_keeps_the_id():
    room, _ = new_room()
    a, b = join(room), join(room)
    alice = Presence("alice")
    room.handle(a, alice.frame())
    take(a)
    take(b)
    alice.set({"user": {"name": "alice"}, "cursor": {"x": 1, "y": 1}})
    room.handle(a, alice.frame())  # clock 2
    take(a)
    take(b)
    room.handle(a, aware([(alice.id, 1, "null")]))  # an older removal changes nothing
    assert room.states[alice.id][0] == 2 and take(a) == [] and take(b) == []
    removal = aware([(alice.id, 2, "null")])  # the same clock removes (as in y-protocols)
    room.handle(a, removal)
    assert room.states == {}
    assert take(a) == [removal] and take(b) == [removal]
    # a live owner keeps its id even without a state: nobody else may take it
    room.handle(b, aware([(alice.id, 9, json.dumps({"user": {"name": "bob"}}))]))
    assert room.states == {} and room.owners == {alice.id: a} and take(a) == []


def test_ownership_passes_on_to_the_same_identity_when_the_owner_leaves():
    room, _ = new_room()
    a, b = join(room, identity="alice"), join(room)
    alice = Presence("alice")
    room.handle(a, alice.frame())
    take(b)
    room.leave(a)
    (gone,) = take(b)
    assert entries(gone) == [(alice.id, alice.clock + 1, "null")]
    assert room.owners == {} and room.states == {} and room.conns == {b}
    back = join(room, identity="alice")  # the same token, reconnected
    take(back)
    again = json.dumps({"user": {"name": "alice, reconnected"}})
    room.handle(back, aware([(alice.id, 1, again)]))
    assert room.owners == {alice.id: back} and room.states == {alice.id: (1, again)}
    assert alice.id not in room.reserved  # claimed: no longer reserved
    assert take(b) == [aware([(alice.id, 1, again)])] and take(back) == [aware([(alice.id, 1, again)])]


def test_a_departed_owners_id_is_reserved_to_its_identity(monkeypatch: pytest.MonkeyPatch):
    now = [1000.0]
    monkeypatch.setattr(presence_module, "time", SimpleNamespace(monotonic=lambda: now[0]))
    room, _ = new_room()
    a, mallory = join(room, identity="alice"), join(room, identity="mallory")
    state = json.dumps({"user": {"name": "alice"}})
    room.handle(a, aware([(7, 1, state)]))
    take(mallory)
    room.leave(a)
    take(mallory)
    assert room.reserved == {7: ("alice", 1000.0 + ID_GRACE)}

    forged = json.dumps({"user": {"name": "not alice"}})
    now[0] += ID_GRACE - 1  # within the grace: only alice's token may take it
    room.handle(mallory, aware([(7, 2, forged)]))
    assert room.owners == {} and room.states == {} and mallory.awareness_ids == set()
    assert take(mallory) == []
    back = join(room, "view", identity="alice")  # the same token, whatever the connection
    room.handle(back, aware([(7, 2, state)]))
    assert room.owners == {7: back} and room.reserved == {}

    room.leave(back)  # reserved again, from now
    assert room.reserved == {7: ("alice", now[0] + ID_GRACE)}
    now[0] += ID_GRACE  # the grace is over: the id is free for anyone
    room.handle(mallory, aware([(7, 3, forged)]))
    assert room.owners == {7: mallory} and room.states == {7: (3, forged)} and room.reserved == {}


async def test_a_closing_owner_hands_its_id_over_to_its_identity_and_its_leave_removes_nothing():
    room, _ = new_room()
    a, b, c = join(room, identity="alice"), join(room, identity="alice"), join(room)
    alice = Presence("alice")
    room.handle(a, alice.frame())
    for conn in (a, b, c):
        take(conn)
    a.close(p.Close.NORMAL, "going")  # closed, not yet left: its ids may be taken over by its token
    again = json.dumps({"user": {"name": "alice, reconnected"}})
    room.handle(c, aware([(alice.id, alice.clock + 1, json.dumps({"user": {"name": "c"}}))]))
    assert room.owners == {alice.id: a} and take(c) == []  # another token may not
    room.handle(b, aware([(alice.id, alice.clock + 1, again)]))
    assert room.owners == {alice.id: b} and b.awareness_ids == {alice.id} and alice.id not in a.awareness_ids
    take(b)
    take(c)
    room.leave(a)
    assert take(b) == [] and take(c) == []  # the id is b's now: no removal for it
    assert room.states == {alice.id: (alice.clock + 1, again)} and room.reserved == {}


def test_leave_broadcasts_removals_for_the_leavers_ids_only():
    room, _ = new_room()
    a, b, quiet = join(room), join(room), join(room)
    s1, s2, s3 = (json.dumps({"user": {"name": n}}) for n in ("a1", "a2", "b"))
    room.handle(a, aware([(1, 4, s1), (2, 6, s2)]))
    room.handle(b, aware([(3, 1, s3)]))
    for conn in (a, b, quiet):
        take(conn)
    room.leave(a)
    assert room.conns == {b, quiet}
    for conn in (b, quiet):
        (gone,) = take(conn)
        assert sorted(entries(gone)) == [(1, 5, "null"), (2, 7, "null")]
    assert take(a) == []  # the leaver is told nothing
    assert room.states == {3: (1, s3)} and room.owners == {3: b} and a.awareness_ids == set()
    assert set(room.reserved) == {1, 2}  # the leaver's ids, for its token only
    room.leave(quiet)  # a connection without presence leaves silently
    assert take(b) == [] and room.conns == {b} and set(room.reserved) == {1, 2}


# ---- bounds per connection -----------------------------------------------------------------


async def test_send_buffer_overflow_closes_the_slow_connection_with_1013():
    limit = 64 * 1024
    room, writer = new_room()
    editor, fast = join(room), join(room)
    slow = join(room, send_queue_bytes=limit)  # it reads nothing from here on
    take(fast)
    take(slow)
    client = Doc()
    huge = p.sync_update(change(client, huge="h" * (limit + 1024)))
    room.handle(editor, huge)
    writer.commit()
    assert take(slow) == [huge] and not slow.closed  # one message always fits an empty buffer
    part = limit // 2 + 1024
    frames = [p.sync_update(change(client, **{f"k{i}": str(i) * part})) for i in range(3)]
    room.handle(editor, frames[0])
    writer.commit()
    assert len(frames[0]) < slow.transport.get_write_buffer_size() < limit and not slow.closed
    room.handle(editor, frames[1])  # the backlog would pass the bound
    writer.commit()
    code, reason = closed_with(slow)
    assert code == p.Close.TOO_SLOW and "too slow" in reason and room.metrics.slow_closed == 1
    room.handle(editor, frames[2])
    writer.commit()
    assert take(slow) == frames[:1]  # nothing more is written to a closing connection
    await asyncio.sleep(0)
    assert slow.ws.closed_with == (p.Close.TOO_SLOW, reason)  # the close frame went out through ASGI
    assert take(fast) == [huge, *frames] and not fast.closed


async def test_a_close_reason_is_cut_to_what_a_close_frame_holds():
    conn = new_conn()
    conn.close(p.Close.MALFORMED, "é" * 100)
    code, reason = conn.close_args
    assert code == 1007 and len(reason.encode()) <= 123 and reason == "é" * 61
    conn.close(p.Close.NORMAL, "again")  # the first close wins
    assert conn.close_args == (1007, "é" * 61)
    conn.send(b"late")
    assert take(conn) == []


async def test_closing_aborts_the_transport_after_the_grace(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(conn_module, "CLOSE_GRACE", 0.01)
    conn = new_conn()
    conn.close(p.Close.POLICY, "enough")
    await asyncio.sleep(0)
    assert not conn.transport.aborted  # the close frame gets its grace first
    await asyncio.sleep(0.03)
    assert conn.transport.aborted


async def test_more_awareness_ids_than_the_bound_closes_with_1008():
    room, _ = new_room()
    other, greedy = join(room), join(room, awareness_ids=2)
    s = json.dumps({"user": {"name": "g"}})
    room.handle(greedy, aware([(1, 1, s), (2, 1, s)]))
    room.handle(greedy, aware([(1, 2, s), (9, 1, "null")]))  # its own ids again, and a no-op removal
    assert greedy.awareness_ids == {1, 2} and not greedy.closed
    take(other)
    room.handle(greedy, aware([(3, 1, s)]))  # a third id
    code, reason = closed_with(greedy)
    assert code == p.Close.POLICY == 1008 and "more than 2 awareness client ids" in reason
    assert 3 not in room.owners and 3 not in room.states and greedy.awareness_ids == {1, 2}
    assert take(other) == [] and room.metrics.policy_closed == 1


async def test_an_awareness_state_over_the_byte_bound_closes_with_1008():
    limit = 1024
    room, _ = new_room()
    other, big = join(room), join(room, awareness_bytes=limit)
    head, tail = '{"n": "', '"}'
    exact = head + "x" * (limit - len(head) - len(tail)) + tail
    assert len(exact.encode()) == limit
    room.handle(big, aware([(5, 1, exact)]))  # at the bound: fine
    assert room.states == {5: (1, exact)} and not big.closed
    take(other)
    euros = head + "€" * 400 + tail  # 409 characters, 1209 bytes: the bound is in bytes
    room.handle(big, aware([(5, 2, euros)]))
    code, reason = closed_with(big)
    assert code == p.Close.POLICY and f"limit of {limit} bytes" in reason
    assert room.states == {5: (1, exact)} and take(other) == [] and room.metrics.policy_closed == 1


async def test_more_full_state_requests_than_the_budget_closes_with_1008():
    room, _ = new_room()
    syncer, querier = join(room), join(room)
    take(syncer)
    take(querier)
    for _ in range(STATE_REQUESTS):
        room.handle(syncer, p.sync_step1(Doc().get_state()))
    assert len(take(syncer)) == STATE_REQUESTS and not syncer.closed
    room.handle(syncer, p.sync_step1(Doc().get_state()))
    code, reason = closed_with(syncer)
    assert code == p.Close.POLICY and f"more than {STATE_REQUESTS} sync requests" in reason
    assert take(syncer) == []  # refused: no reply, only the close

    # awareness queries draw on the same budget
    for i in range(STATE_REQUESTS):
        room.handle(querier, p.sync_step1(Doc().get_state()) if i % 2 else bytes([p.MSG_QUERY_AWARENESS]))
    assert len(take(querier)) == STATE_REQUESTS and not querier.closed
    room.handle(querier, bytes([p.MSG_QUERY_AWARENESS]))
    code, reason = closed_with(querier)
    assert code == p.Close.POLICY and "awareness queries" in reason
    assert room.metrics.policy_closed == 2


# ---- cluster mode: what other nodes committed, and what this one shares ------------------------


def test_presence_changes_are_shared_through_the_writer_updates_are_not():
    room, writer = new_room()
    a, b = join(room, identity="alice-token"), join(room)
    alice = Presence("alice")
    room.handle(a, alice.frame())
    room.handle(a, p.sync_update(change(Doc(), k=1)))
    assert writer.shared == [(ROOM, alice.frame(), "alice-token")]  # the update goes through append, not here
    take(b)
    room.leave(a)
    (gone,) = take(b)
    assert entries(gone) == [(alice.id, 2, "null")] and writer.shared[-1] == (ROOM, gone, "alice-token")


def test_a_remote_update_is_applied_and_forwarded_as_is_to_every_connection():
    room, writer = new_room()
    a, b = join(room), join(room)
    take(a)
    take(b)
    frame = p.sync_update(change(Doc(), k="from another node"))
    room.remote_update(frame)
    assert content(room.doc) == {"k": "from another node"}
    assert take(a) == [frame] and take(b) == [frame]  # committed already: no wait, nobody excluded
    assert writer.appends == [] and writer.waiting == []  # and not appended again


def test_remote_presence_shows_here_and_another_nodes_ids_are_not_ours_to_claim():
    room, writer = new_room()
    mallory, alice_here, watcher = join(room, identity="mallory"), join(room, identity="alice"), join(room)
    alice = Presence("alice")
    for c in (mallory, alice_here, watcher):
        take(c)
    room.remote_awareness(alice.frame(), "alice", "node-b")
    assert room.states[alice.id] == (1, state_json(alice.frame())) and room.remote == {alice.id: ("alice", "node-b")}
    assert take(watcher) == [alice.frame()]
    joiner = join(room)  # a newcomer here sees the remote presence too
    assert entries(take(joiner)[1]) == entries(alice.frame())

    forged = aware([(alice.id, 5, '{"user":{"name":"mallory"}}')])
    room.handle(mallory, forged)  # another identity: dropped
    assert room.states[alice.id][0] == 1 and room.owners == {} and take(watcher) == []
    moved = alice.set({"user": {"name": "alice"}, "cursor": {"x": 3, "y": 4}})
    room.handle(alice_here, moved)  # the same identity, reconnected to this node: it is hers again
    assert room.owners[alice.id] is alice_here and alice.id not in room.remote
    assert take(watcher) == [moved] and writer.shared[-1] == (ROOM, moved, "alice")

    bob = Presence("bob")  # a remote frame naming an id held here: that entry is skipped, the rest applied
    both = p.awareness_message(p.encode_awareness([(alice.id, 9, "null"), (bob.id, 1, state_json(bob.frame()))]))
    room.remote_awareness(both, "bob", "node-b")
    assert alice.id in room.states and room.remote[bob.id] == ("bob", "node-b")
    assert [e[0] for e in entries(take(watcher)[0])] == [bob.id]


def test_the_presence_of_a_node_that_stopped_beating_goes():
    room, _ = new_room()
    watcher = join(room)
    take(watcher)
    alice, bob = Presence("alice"), Presence("bob")
    room.remote_awareness(alice.frame(), "alice", "node-b")
    room.remote_awareness(bob.frame(), "bob", "node-c")
    take(watcher)
    room.forget_nodes({"node-a", "node-c"})
    assert set(room.states) == {bob.id} and room.remote == {bob.id: ("bob", "node-c")}
    (gone,) = take(watcher)
    assert entries(gone) == [(alice.id, 2, "null")]
    room.forget_nodes({"node-a", "node-c"})  # nothing more to say
    assert take(watcher) == []
