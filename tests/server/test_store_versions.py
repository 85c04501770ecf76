"""Kept versions and quarantine (`server.kept`), one suite on both room stores: the embedded
`server.store.Store` (SQLite) and the cluster's `server.cluster.snapshots.Snapshots`
(PostgreSQL). Versions are kept newest first, bounded, never for an empty canvas; the newest is
the fallback; quarantined rows are kept with why; rooms written by the code before
`common.sql` open with their snapshot and every version."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from psycopg_pool import ConnectionPool

from server.cluster.snapshots import Snapshots
from server.store import Row, Snapshot, Store

from support.sql_engines import raw


@dataclass
class RoomStore:
    """One of the two stores, with what differs in how a snapshot is saved and read."""

    store: Store | Snapshots
    save: Callable[[str, Snapshot], None]
    snapshot: Callable[[str], bytes | None]
    rows: Callable[[str], list[tuple[Any, ...]]]


def room_store(where: Path | ConnectionPool, versions_kept: int = 2) -> RoomStore:
    if isinstance(where, ConnectionPool):
        snaps = Snapshots(where, versions_kept)
        covers = iter(range(1, 1000))

        def pg_rows(query: str) -> list[tuple[Any, ...]]:
            with snaps.sql.read() as c:
                return c.rows(query)

        def pg_snapshot(room: str) -> bytes | None:
            row = snaps.load(room)[0]
            return row.data if row else None
        return RoomStore(snaps, lambda room, snap: snaps.save(room, snap, f"{next(covers)}-0") and None, pg_snapshot, pg_rows)
    store = Store(where / "inhabit.db", versions_kept)

    def sqlite_snapshot(room: str) -> bytes | None:
        return next((r.data for r in store.load(room) if r.kind == "snapshot"), None)
    return RoomStore(store, lambda room, snap: store.write([], {room: snap}), sqlite_snapshot,
                     lambda query: store._db.execute(query).fetchall())


@pytest.fixture
def rooms(where: Path | ConnectionPool) -> Iterator[RoomStore]:
    rs = room_store(where)
    yield rs
    if isinstance(rs.store, Store):  # a Snapshots store closes the pool, which the fixture does
        rs.store.close()


def test_versions_are_kept_newest_first_bounded_never_empty(rooms: RoomStore) -> None:
    store = rooms.store
    assert store.versions("r") == [] and store.latest_version("r") == []
    for i, strokes in enumerate([3, 4, 5, 0]):
        rooms.save("r", Snapshot(f"doc{i}".encode(), strokes))
    rooms.save("other", Snapshot(b"elsewhere", 1))
    kept = store.versions("r")
    assert [v.strokes for v in kept] == [5, 4] and kept[0].id > kept[1].id  # 3: beyond the bound; 0: an empty canvas
    assert all(v.saved_ms > 0 for v in kept)
    assert store.version("r", kept[0].id) == b"doc2" and store.version("r", kept[1].id) == b"doc1"
    assert store.version("other", kept[0].id) is None
    assert store.latest_version("r") == [Row("version", kept[0].id, b"doc2")]
    assert rooms.snapshot("r") == b"doc3"  # the snapshot itself is the newest, kept or not
    assert [v.strokes for v in store.versions("other")] == [1]


def test_quarantine_keeps_a_copy_with_why(rooms: RoomStore) -> None:
    rooms.save("r", Snapshot(b"doc", 1))
    rooms.store.quarantine("r", [(Row("version", rooms.store.versions("r")[0].id, b"bad"), "it did not decode")])
    assert rooms.rows("SELECT room, kind, data, error FROM quarantine") == [("r", "version", b"bad", "it did not decode")]
    assert rooms.rows("SELECT at FROM quarantine")[0][0] > 0


# ---- rooms written before `common.sql` (the exact DDL and statements of that code) ----

SQLITE_DDL = """
CREATE TABLE IF NOT EXISTS updates (
    id INTEGER PRIMARY KEY,
    room TEXT NOT NULL,
    data BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS updates_room ON updates (room, id);
CREATE TABLE IF NOT EXISTS snapshots (
    room TEXT PRIMARY KEY,
    data BLOB NOT NULL,
    saved_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS versions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    room TEXT NOT NULL,
    data BLOB NOT NULL,
    saved_ms INTEGER NOT NULL,
    strokes INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS versions_room ON versions (room, id);
CREATE TABLE IF NOT EXISTS quarantine (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    room TEXT NOT NULL,
    kind TEXT NOT NULL,
    data BLOB,
    error TEXT NOT NULL,
    at INTEGER NOT NULL
);
PRAGMA user_version = 2;
"""

PG_DDL = """
CREATE SCHEMA IF NOT EXISTS inhabit;
CREATE TABLE IF NOT EXISTS inhabit.rooms (
    room text PRIMARY KEY,
    data bytea NOT NULL,
    stream_ms bigint NOT NULL,
    stream_seq bigint NOT NULL,
    saved_ms bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS inhabit.versions (
    id bigserial PRIMARY KEY,
    room text NOT NULL,
    data bytea NOT NULL,
    saved_ms bigint NOT NULL,
    strokes int NOT NULL
);
CREATE INDEX IF NOT EXISTS versions_room ON inhabit.versions (room, id);
CREATE TABLE IF NOT EXISTS inhabit.quarantine (
    id bigserial PRIMARY KEY,
    room text NOT NULL,
    kind text NOT NULL,
    data bytea,
    error text NOT NULL,
    at bigint NOT NULL
);
"""


def test_rooms_written_before_open_with_their_snapshot_and_every_version(where: Path | ConnectionPool) -> None:
    pg = isinstance(where, ConnectionPool)
    at = 1_700_000_000_000
    prefix = "inhabit." if pg else ""
    snapshot = (f"INSERT INTO {prefix}rooms (room, data, stream_ms, stream_seq, saved_ms) VALUES (?, ?, 0, 1, ?)" if pg else
                "INSERT INTO snapshots (room, data, saved_ms) VALUES (?, ?, ?)")
    raw(where, "inhabit.db", PG_DDL if pg else SQLITE_DDL, [
        (snapshot, [("r", b"doc", at)]),
        (f"INSERT INTO {prefix}versions (room, data, saved_ms, strokes) VALUES (?, ?, ?, ?)",
         [("r", b"v1", at, 1), ("r", b"v2", at + 1, 2), ("s", b"v3", at + 2, 3)]),
        (f"INSERT INTO {prefix}quarantine (room, kind, data, error, at) VALUES (?, ?, ?, ?, ?)", [("r", "update", b"bad", "why", at)]),
    ])
    rooms = room_store(where, versions_kept=10)
    store = rooms.store
    assert rooms.snapshot("r") == b"doc"
    assert [(v.id, v.saved_ms, v.strokes) for v in store.versions("r")] == [(2, at + 1, 2), (1, at, 1)]
    assert [store.version("r", 1), store.version("r", 2), store.version("s", 3)] == [b"v1", b"v2", b"v3"]
    rooms.save("r", Snapshot(b"doc2", 4))  # and it goes on from there
    assert [v.id for v in store.versions("r")] == [4, 2, 1]
    assert rooms.rows("SELECT room, kind, data, error, at FROM quarantine") == [("r", "update", b"bad", "why", at)]
    if isinstance(store, Store):
        store.close()
