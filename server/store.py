"""Our own SQLite store for room documents.

Why not pycrdt-store: version 0.1.5 loses data (FIELD_NOTES): squashing without a compression
callback writes an EMPTY document, and compression with checkpoints drops updates while the
decode error is swallowed by a logger. This store is small enough to prove correct:

- `updates`: append-only rows of the exact update bytes a room applied, in order;
- `snapshots`: one row per room, the squashed state of every update deleted so far;
- `versions`: the last few compacted states per room, so an editor can roll a wipe back;
- `quarantine`: rows that failed to load, kept (never deleted) for a person to look at.

Loading = snapshot + updates in id order. Compaction writes the snapshot and deletes the rows
it covers in ONE transaction, so a crash leaves either the old or the new history, and the
database grows with the document, not with its history. WAL + synchronous=NORMAL: a commit
survives a killed process. `server.writer.Writer` commits off the event loop, one group at a time.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from common.sqlite import open_sqlite, transaction

log = logging.getLogger("inhabit.store")

SCHEMA = """
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
"""

INSERT_UPDATE = "INSERT INTO updates (room, data) VALUES (?, ?)"


def _migrate(db: sqlite3.Connection) -> None:
    """Version 1 numbered updates with AUTOINCREMENT, which costs every insert an update of
    `sqlite_sequence` (a second page in the WAL per commit, on the hot path). A plain rowid
    key is enough: new rows always get a larger id than every row still stored, which is the
    only order that loading relies on. Rebuilt once, in the opening transaction."""
    row = db.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'updates'").fetchone()
    if row is None or "AUTOINCREMENT" not in row[0].upper():
        return
    db.execute("ALTER TABLE updates RENAME TO updates_v1")
    db.execute("DROP INDEX IF EXISTS updates_room")
    db.execute("CREATE TABLE updates (id INTEGER PRIMARY KEY, room TEXT NOT NULL, data BLOB NOT NULL)")
    db.execute("INSERT INTO updates (id, room, data) SELECT id, room, data FROM updates_v1")
    db.execute("DROP TABLE updates_v1")
    db.execute("CREATE INDEX updates_room ON updates (room, id)")


# Test hook (documented, never set in production): while the file named by this variable
# exists, the store caps its database at its current size (SQLite's `max_page_count`), so the
# next write that needs a new page fails with SQLITE_FULL exactly as on a full disk. A test
# cannot fill a real disk without root tricks; this exercises SQLite's own error path.
FULL_FLAG_ENV = "INHABIT_TEST_DISK_FULL_FILE"


class DataFolderError(RuntimeError):
    """The data folder cannot be used (missing rights, read-only, not a folder): a start-up error."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A room's squashed state, queued for the store; `strokes` is listed with its version."""

    data: bytes
    strokes: int


@dataclass(frozen=True, slots=True)
class Row:
    """A stored blob and where it came from (so a bad one can be quarantined)."""

    kind: str  # "snapshot" | "update" | "version"
    id: int  # the update's or version's row id; 0 for the snapshot (one per room)
    data: bytes


@dataclass(frozen=True, slots=True)
class VersionRow:
    id: int
    saved_ms: int
    strokes: int


def now_ms() -> int:
    return int(time.time() * 1000)


class Store:
    """Synchronous, thread-safe access to the database (call it from a worker thread)."""

    def __init__(self, path: str | Path, versions_kept: int = 10) -> None:
        self.path = Path(path)
        self.versions_kept = versions_kept
        self._lock = threading.Lock()
        try:
            self._db = open_sqlite(self.path, SCHEMA)
            # a big snapshot passes through the WAL; don't keep the file that big afterwards
            self._db.execute("PRAGMA journal_size_limit = 16777216")
            self._db.execute("PRAGMA wal_autocheckpoint = 0")  # the writer checkpoints from its thread
            self._max_pages = self._db.execute("PRAGMA max_page_count").fetchone()[0]
            with transaction(self._db) as db:  # prove we can write
                _migrate(db)
                db.execute("PRAGMA user_version = 2")
        except (OSError, sqlite3.Error) as exc:
            raise DataFolderError(f"cannot write the database {self.path}: {exc}") from exc
        flag = os.environ.get(FULL_FLAG_ENV)
        self._full_flag = Path(flag) if flag else None

    # reading

    def load(self, room: str) -> list[Row]:
        """The room's blobs to apply in order: its snapshot, then its updates.

        A damaged page makes a read fail: log it and load what can be read, so one bad page
        costs the edits stored on it, not the room.
        """
        rows: list[Row] = []
        with self._lock:
            try:
                snap = self._db.execute("SELECT data FROM snapshots WHERE room = ?", (room,)).fetchone()
                if snap:
                    rows.append(Row("snapshot", 0, snap[0]))
            except sqlite3.DatabaseError as exc:
                log.error("room %s: cannot read its snapshot (%s); loading from its versions and updates", room, exc)
                rows.extend(self._latest_version(room))
            try:
                for rid, data in self._db.execute("SELECT id, data FROM updates WHERE room = ? ORDER BY id", (room,)):
                    rows.append(Row("update", rid, data))
            except sqlite3.DatabaseError as exc:
                log.error("room %s: cannot read all its updates (%s); loading what was readable", room, exc)
        return rows

    def latest_version(self, room: str) -> list[Row]:
        """The newest kept version (the fallback when the snapshot is damaged)."""
        with self._lock:
            return self._latest_version(room)

    def _latest_version(self, room: str) -> list[Row]:
        try:
            row = self._db.execute("SELECT id, data FROM versions WHERE room = ? ORDER BY id DESC LIMIT 1", (room,)).fetchone()
        except sqlite3.DatabaseError:
            return []
        return [Row("version", row[0], row[1])] if row else []

    def versions(self, room: str) -> list[VersionRow]:
        with self._lock:
            rows = self._db.execute("SELECT id, saved_ms, strokes FROM versions WHERE room = ? ORDER BY id DESC", (room,)).fetchall()
        return [VersionRow(*r) for r in rows]

    def version(self, room: str, version_id: int) -> bytes | None:
        with self._lock:
            row = self._db.execute("SELECT data FROM versions WHERE room = ? AND id = ?", (room, version_id)).fetchone()
        return row[0] if row else None

    # writing

    def write(self, appends: list[tuple[str, bytes]], snapshots: dict[str, Snapshot]) -> None:
        """Replace the history of `snapshots`' rooms, then append updates; one transaction.

        A snapshot covers every update stored before it; `appends` are the ones after it.
        Raises sqlite3.Error (disk full, read-only, I/O) with nothing written.
        """
        with self._lock:
            self._write_locked(appends, snapshots)

    def try_write(self, appends: list[tuple[str, bytes]]) -> bool:
        """`write(appends, {})` if the store is free right now, else False (never waits: the
        writer calls this on the event loop for small batches, where a thread hand-off would
        cost more than the insert)."""
        if not self._lock.acquire(blocking=False):
            return False
        try:
            self._write_locked(appends, {})
        finally:
            self._lock.release()
        return True

    def checkpoint(self) -> None:
        """Copy the WAL into the database (PASSIVE: never waits for readers). Done by the
        writer's thread, so that no commit on the event loop pays for it."""
        with self._lock:
            self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def _write_locked(self, appends: list[tuple[str, bytes]], snapshots: dict[str, Snapshot]) -> None:
        self._apply_full_flag()
        if len(appends) == 1 and not snapshots:  # the common case: one statement is its own transaction
            self._db.execute(INSERT_UPDATE, appends[0])
            return
        with transaction(self._db) as db:
            self._write(db, appends, snapshots)

    def _write(self, db: sqlite3.Connection, appends: list[tuple[str, bytes]], snapshots: dict[str, Snapshot]) -> None:
        now = now_ms()
        for room, snap in snapshots.items():
            db.execute("DELETE FROM updates WHERE room = ?", (room,))
            db.execute(
                "INSERT INTO snapshots (room, data, saved_ms) VALUES (?, ?, ?) "
                "ON CONFLICT(room) DO UPDATE SET data = excluded.data, saved_ms = excluded.saved_ms",
                (room, snap.data, now),
            )
            if self.versions_kept and snap.strokes:  # an empty canvas is nothing to roll back to
                db.execute("INSERT INTO versions (room, data, saved_ms, strokes) VALUES (?, ?, ?, ?)",
                           (room, snap.data, now, snap.strokes))
                db.execute("DELETE FROM versions WHERE room = ? AND id NOT IN "
                           "(SELECT id FROM versions WHERE room = ? ORDER BY id DESC LIMIT ?)",
                           (room, room, self.versions_kept))
        if appends:
            db.executemany(INSERT_UPDATE, appends)

    def quarantine(self, room: str, bad: list[tuple[Row, str]]) -> None:
        """Move rows that failed to load out of the room's history, keeping their bytes."""
        def move(db: sqlite3.Connection) -> None:
            for row, error in bad:
                db.execute("INSERT INTO quarantine (room, kind, data, error, at) VALUES (?, ?, ?, ?, ?)",
                           (room, row.kind, row.data, error, now_ms()))
                if row.kind == "snapshot":
                    db.execute("DELETE FROM snapshots WHERE room = ?", (room,))
                else:
                    db.execute(f"DELETE FROM {row.kind}s WHERE id = ?", (row.id,))
        with self._lock, transaction(self._db) as db:
            move(db)

    def _apply_full_flag(self) -> None:
        if self._full_flag is None:
            return
        if self._full_flag.exists():
            self._db.execute("PRAGMA max_page_count = 1")  # clamps to the current size
        else:
            self._db.execute(f"PRAGMA max_page_count = {int(self._max_pages)}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

