"""Our own SQLite store for room documents.

Why not pycrdt-store: version 0.1.5 loses data (FIELD_NOTES): squashing without a compression
callback writes an EMPTY document, and compression with checkpoints drops updates while the
decode error is swallowed by a logger. This store is small enough to prove correct:

- `updates`: append-only rows of the exact update bytes a room applied, in order;
- `snapshots`: one row per room, the squashed state of every update deleted so far;
- `versions`: the last few compacted states per room, so an editor can roll a wipe back;
- `quarantine`: rows that failed to load, kept for a person to look at (deleted with its room);
- `chat`: older chat lines the room's document let go (`server.chatlog`), bounded per room;
- `room_opened`: when each room was last opened (`common.disk`: what to trim first, expiry).

As a `common.disk.History`, its history is the versions (never the document); forgetting a
room (`--room-ttl`) deletes all of it. The quarantine, versions and chat are kept as in cluster mode, by the same code (`server.kept`, `server.chatlog`); the updates log is
SQLite's own (cluster mode's is the Redis stream), and its per-update commit stays a single
plain INSERT on the connection.

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
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from common.sql import SqlError, SqliteConn, SqliteSql
from common.sqlite import open_sqlite, transaction

from . import chatlog, kept
from .chatlog import ChatRow
from .kept import Row, VersionRow

__all__ = ["FULL_FLAG_ENV", "DataFolderError", "Row", "Snapshot", "Store", "VersionRow"]

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
""" + kept.DDL.format(**SqliteSql.types) + ";" + chatlog.DDL.format(**SqliteSql.types) + ";" + kept.OPENED_DDL + ";"

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


def now_ms() -> int:
    return int(time.time() * 1000)


RECLAIM_PAGES = 25_600
"""Free pages handed back to the file system per trim (100 MiB of 4 KiB pages), so one trim never
holds the store for long; the rest goes at the next."""
STORED_ROOMS = "SELECT room FROM snapshots UNION SELECT room FROM updates"


class Store:
    """Synchronous, thread-safe access to the database (call it from a worker thread)."""

    name = "versions"
    """Its history, as `common.disk` reports it."""

    def __init__(self, path: str | Path, versions_kept: int = 10, versions_bytes: int = 0) -> None:
        self.path = Path(path)
        self.versions_kept = versions_kept
        self.kept = kept.Kept(versions_kept, versions_bytes)
        self.chat = chatlog.ChatLog()
        self._lock = threading.Lock()
        try:
            self._db = open_sqlite(self.path, SCHEMA)
            self._conn = SqliteConn(self._db)  # for `kept`, under the lock
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
            return self.kept.latest(self._conn, room)
        except SqlError:
            return []

    def versions(self, room: str) -> list[VersionRow]:
        with self._lock:
            return self.kept.versions(self._conn, room)

    def version(self, room: str, version_id: int) -> bytes | None:
        with self._lock:
            return self.kept.version(self._conn, room, version_id)

    def chat_page(self, room: str, before: int | None, limit: int) -> list[ChatRow]:
        with self._lock:
            return self.chat.page(self._conn, room, before, limit)

    # writing

    def archive_chat(self, room: str, lines: list[tuple[str, str]], keep_bytes: int) -> None:
        """Keep chat lines the room's document let go ((id, JSON), oldest first)."""
        with self._lock, transaction(self._db):
            self.chat.archive(self._conn, room, lines, keep_bytes)

    def clear_chat(self, room: str) -> None:
        with self._lock, transaction(self._db):
            self.chat.clear(self._conn, room)

    def chat_usage(self) -> dict[str, int]:
        with self._lock:
            return self.chat.usage(self._conn)

    def trim_chat(self, room: str, keep_bytes: int) -> int:
        with self._lock:
            with transaction(self._db):
                freed = self.chat.trim(self._conn, room, keep_bytes)
            self._reclaim()
        return freed

    def write(self, appends: list[tuple[str, bytes]], snapshots: dict[str, Snapshot]) -> None:
        """Replace the history of `snapshots`' rooms, then append updates; one transaction.

        A snapshot covers every update stored before it; `appends` are the ones after it.
        Raises sqlite3.Error or `common.sql.SqlError` (disk full, read-only, I/O) with nothing written.
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
            self.kept.keep(self._conn, room, snap.data, now, snap.strokes)
        if appends:
            db.executemany(INSERT_UPDATE, appends)

    def quarantine(self, room: str, bad: list[tuple[Row, str]]) -> None:
        """Move rows that failed to load out of the room's history, keeping their bytes."""
        with self._lock, transaction(self._db) as db:
            self.kept.quarantine(self._conn, room, bad, now_ms())
            for row, _ in bad:
                if row.kind == "snapshot":
                    db.execute("DELETE FROM snapshots WHERE room = ?", (room,))
                else:
                    db.execute(f"DELETE FROM {row.kind}s WHERE id = ?", (row.id,))

    # its history and its rooms' openings, for `common.disk`

    def usage(self) -> dict[str, int]:
        with self._lock:
            return self.kept.usage(self._conn)

    def trim(self, room: str, keep_bytes: int) -> int:
        with self._lock:
            with transaction(self._db):
                freed = self.kept.trim(self._conn, room, keep_bytes)
            self._reclaim()
        return freed

    def forget(self, room: str) -> int:
        """Delete the room: its document, versions, quarantined rows, older chat lines and opening."""
        with self._lock:
            with transaction(self._db) as db:
                doc = db.execute("SELECT (SELECT COALESCE(SUM(length(data)), 0) FROM updates WHERE room = ?) + "
                                 "(SELECT COALESCE(SUM(length(data)), 0) FROM snapshots WHERE room = ?)", (room, room)).fetchone()[0]
                db.execute("DELETE FROM updates WHERE room = ?", (room,))
                db.execute("DELETE FROM snapshots WHERE room = ?", (room,))
                self.chat.clear(self._conn, room)
                freed = self.kept.forget(self._conn, room) + int(doc)
            self._reclaim()
        return freed

    def opened(self, rooms: Iterable[str], at_ms: int) -> None:
        with self._lock, transaction(self._db):
            self.kept.opened(self._conn, rooms, at_ms)

    def last_opened(self) -> dict[str, int]:
        with self._lock, transaction(self._db):
            return self.kept.last_opened(self._conn, STORED_ROOMS, now_ms())

    def reclaim(self) -> None:
        with self._lock:
            self._reclaim()

    def _reclaim(self) -> None:
        """Hand free pages back to the file system (files made with auto_vacuum = INCREMENTAL,
        `common.sqlite`; a no-op on older files, whose free pages are reused instead), then copy
        the WAL in and truncate it (the writer's own checkpoints are PASSIVE and leave its size)."""
        try:
            self._db.executescript(f"PRAGMA incremental_vacuum({RECLAIM_PAGES});")  # stepped to the end (`execute` frees one page)
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        except sqlite3.Error as exc:
            log.warning("store: cannot hand free pages back: %s", exc)

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

