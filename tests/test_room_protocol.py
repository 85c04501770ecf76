"""The room's protocol handling and awareness ownership, in process: milliseconds, no server.

`server.room.Room` is driven directly with a pycrdt Doc, a recording writer (or a real
`server.store.Writer`), `server.metrics.Metrics` and `server.conn.Conn`s that are never
started, so every frame the room sends stays in `conn.queue` for the test to read. Frames are
built the way clients build them: pycrdt documents and awareness, `wire.protocol` encoders.
The real-server versions of these scenarios are in test_rooms.py, test_access.py,
test_bad_input.py and test_awareness_ownership.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pycrdt import Awareness, Doc, Map, write_var_uint

from server.conn import Conn
from server.metrics import Metrics
from server.room import Room
from server.store import Store, Writer
from wire import protocol as p

pytestmark = pytest.mark.timeout(30)

ROOM = "r"


class RecordingWriter:
    """What the room asks its writer to store, in order."""

    def __init__(self) -> None:
        self.appends: list[tuple[str, bytes]] = []
        self.snapshots: list[tuple[str, bytes]] = []

    def append(self, room: str, update: bytes) -> None:
        self.appends.append((room, update))

    def snapshot(self, room: str, state: bytes) -> None:
        self.snapshots.append((room, state))


def new_room(compact_every: int = 500) -> tuple[Room, RecordingWriter]:
    writer = RecordingWriter()
    return Room(ROOM, Doc(), writer, Metrics(), compact_every=compact_every), writer  # type: ignore[arg-type]


def join(room: Room, role: str = "edit", limit: int = 64) -> Conn:
    """A connection that joined `room`; never started, so what it is sent stays in its queue."""
    conn = Conn(None, role, limit, room.metrics)
    room.join(conn)
    return conn


def take(conn: Conn) -> list[bytes]:
    """The frames queued for `conn` since the last take (and no close)."""
    frames = list(conn.queue)
    conn.queue.clear()
    assert all(isinstance(f, bytes) for f in frames), frames
    return frames


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
    room, _ = new_room()
    a, b = join(room), join(room, "view")
    room.handle(a, p.sync_update(change(Doc(), k=1)))
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
    take(editor)
    take(other)
    stored = list(writer.appends)

    peer = doc_of(u1)  # has k1, lacks k2
    room.handle(other, p.sync_step1(peer.get_state()))
    (reply,) = take(other)
    sub, missing = sync(reply)
    assert sub == p.SYNC_STEP2
    assert content(doc_of(missing)) == {"k2": 2}  # what the peer lacked, not what it had
    peer.apply_update(missing)
    assert content(peer) == {"k1": 1, "k2": 2} and peer.get_state() == room.doc.get_state()
    # answering is not writing: nothing stored, nobody else told
    assert writer.appends == stored and take(editor) == []


def test_an_empty_peer_gets_everything_and_the_cached_answer_follows_updates():
    room, _ = new_room()
    editor, peer = join(room), join(room)
    client = Doc()
    room.handle(editor, p.sync_update(change(client, a=1)))
    take(peer)
    room.handle(peer, p.sync_step1(Doc().get_state()))
    (reply,) = take(peer)
    assert content(doc_of(sync(reply)[1])) == {"a": 1}
    room.handle(editor, p.sync_update(change(client, b=2)))
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
    assert take(a) == [] and take(b) == [] and take(viewer) == []  # no PermissionDenied either


def test_compaction_replaces_the_history_every_n_updates():
    room, writer = new_room(compact_every=3)
    a = join(room)
    client = Doc()
    for i in range(3):
        room.handle(a, p.sync_update(change(client, **{f"k{i}": i})))
    assert len(writer.appends) == 3 and len(writer.snapshots) == 1
    name, snap = writer.snapshots[0]
    assert name == ROOM and content(doc_of(snap)) == {"k0": 0, "k1": 1, "k2": 2}
    assert room.stored == 0
    room.handle(a, p.sync_update(change(client, k3=3)))
    assert len(writer.snapshots) == 1 and room.stored == 1


async def test_updates_reach_a_real_store(tmp_path: Path):
    store = Store(tmp_path / "room.db")
    writer = Writer(store)
    room = Room(ROOM, Doc(), writer, Metrics(), compact_every=2)
    a = join(room)
    client = Doc()
    for i in range(3):
        room.handle(a, p.sync_update(change(client, **{f"k{i}": i})))
    await writer.close()
    blobs, after_snapshot = store.load(ROOM)
    assert after_snapshot == 1  # k0 and k1 were squashed into the snapshot, k2 came after it
    assert content(doc_of(*blobs)) == {"k0": 0, "k1": 1, "k2": 2} == content(room.doc)
    store.close()


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
    ("bad state vector", p.sync_step1(b"\xff\xff"), "malformed state vector"),
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
    take(offender)
    take(other)
    before = room.doc.get_update()
    with pytest.raises(p.ProtocolError, match=reason):
        room.handle(offender, frame)
    assert room.doc.get_update() == before and len(writer.appends) == 1
    assert take(other) == [] and room.states == {} and room.owners == {}


def test_auth_messages_from_clients_are_ignored():
    room, writer = new_room()
    a, b = join(room), join(room)
    take(a)
    take(b)
    room.handle(a, p.permission_denied("I deny you"))
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
    assert writer.appends == []  # presence is never stored


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


def test_ownership_passes_on_when_the_owner_leaves():
    room, _ = new_room()
    a, b = join(room), join(room)
    alice = Presence("alice")
    room.handle(a, alice.frame())
    take(b)
    room.leave(a)
    (gone,) = take(b)
    assert entries(gone) == [(alice.id, alice.clock + 1, "null")]
    assert room.owners == {} and room.states == {} and room.conns == {b}
    again = json.dumps({"user": {"name": "alice, reconnected"}})
    room.handle(b, aware([(alice.id, 1, again)]))
    assert room.owners == {alice.id: b} and room.states == {alice.id: (1, again)}
    assert take(b) == [aware([(alice.id, 1, again)])]


def test_a_closing_owner_hands_its_id_over_and_its_leave_removes_nothing():
    room, _ = new_room()
    a, b, c = join(room), join(room), join(room)
    alice = Presence("alice")
    room.handle(a, alice.frame())
    for conn in (a, b, c):
        take(conn)
    a.close(p.Close.NORMAL, "going")  # closed, not yet left: its ids may be taken over
    again = json.dumps({"user": {"name": "alice, reconnected"}})
    room.handle(b, aware([(alice.id, alice.clock + 1, again)]))
    assert room.owners == {alice.id: b} and b.awareness_ids == {alice.id} and alice.id not in a.awareness_ids
    take(b)
    take(c)
    room.leave(a)
    assert take(b) == [] and take(c) == []  # the id is b's now: no removal for it
    assert room.states == {alice.id: (alice.clock + 1, again)}


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
    room.leave(quiet)  # a connection without presence leaves silently
    assert take(b) == [] and room.conns == {b}


# ---- slow connections ----------------------------------------------------------------------


def test_send_queue_overflow_closes_the_slow_connection_with_1013():
    room, _ = new_room()
    editor, fast = join(room), join(room)
    slow = join(room, limit=3)  # its SyncStep1 greeting is the first of 3
    take(fast)
    client = Doc()
    frames = [p.sync_update(change(client, **{f"k{i}": i})) for i in range(5)]
    for frame in frames[:2]:
        room.handle(editor, frame)
    assert len(slow.queue) == 3 and not slow.closed  # full, not over
    room.handle(editor, frames[2])  # one more than it holds
    assert slow.closed and slow.close_args is not None
    for frame in frames[3:]:
        room.handle(editor, frame)
    code, reason = slow.close_args
    assert code == p.Close.TOO_SLOW == 1013 and "too slow" in reason
    assert not any(isinstance(f, bytes) for f in slow.queue)  # what was queued is dropped; only the close is left
    assert room.metrics.slow_closed == 1
    assert take(fast) == frames and not fast.closed  # the others are unaffected
    assert content(room.doc) == {f"k{i}": i for i in range(5)}


def test_a_close_reason_is_cut_to_what_a_close_frame_holds():
    conn = Conn(None, "edit", 8, Metrics())
    conn.close(p.Close.MALFORMED, "é" * 100)
    code, reason = conn.close_args
    assert code == 1007 and len(reason.encode()) <= 123 and reason == "é" * 61
    conn.close(p.Close.NORMAL, "again")  # the first close wins
    assert conn.close_args == (1007, "é" * 61)
    conn.send(b"late")
    assert not any(isinstance(f, bytes) for f in conn.queue)
