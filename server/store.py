"""Our own SQLite store for room documents.

Why not pycrdt-store: version 0.1.5 loses data (FIELD_NOTES): squashing without a compression
callback writes an EMPTY document, and compression with checkpoints drops updates while the
decode error is swallowed by a logger. This store is small enough to prove correct:

- `updates`: append-only rows of the exact update bytes a room applied, in order;
- `snapshots`: one row per room, the squashed state of every update deleted so far.

Loading = snapshot + updates in id order. Compaction writes the snapshot and deletes the rows
it covers in ONE transaction, so a crash leaves either the old or the new history, and the
database grows with the document, not with its history. WAL + synchronous=NORMAL: a commit
survives a killed process. The `Writer` batches appends off the hot path and commits at
least every 100 ms.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from pathlib import Path

from pycrdt import Doc

log = logging.getLogger("inhabit.store")

SCHEMA = """
CREATE TABLE IF NOT EXISTS updates (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    room TEXT NOT NULL,
    data BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS updates_room ON updates (room, id);
CREATE TABLE IF NOT EXISTS snapshots (
    room TEXT PRIMARY KEY,
    data BLOB NOT NULL,
    saved_ms INTEGER NOT NULL
);
"""


def open_sqlite(path: Path, schema: str) -> sqlite3.Connection:
    """A WAL-mode connection in autocommit mode (we BEGIN ourselves), usable from any thread
    under the caller's lock. synchronous=NORMAL: a committed row survives a process crash
    (kill -9), which is the durability promise; an OS crash may lose the last commits."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(schema)
    return db


class Store:
    """Synchronous, thread-safe access to the database (call it from a worker thread)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db = open_sqlite(self.path, SCHEMA)

    def load(self, room: str) -> tuple[list[bytes], int]:
        """(blobs to apply in order, number of update rows after the snapshot)."""
        with self._lock:
            snap = self._db.execute("SELECT data FROM snapshots WHERE room = ?", (room,)).fetchone()
            rows = self._db.execute("SELECT data FROM updates WHERE room = ? ORDER BY id", (room,)).fetchall()
        blobs = ([snap[0]] if snap else []) + [r[0] for r in rows]
        return blobs, len(rows)

    def load_doc(self, room: str) -> tuple[Doc, int]:
        doc = Doc()
        blobs, n = self.load(room)
        for blob in blobs:
            doc.apply_update(blob)
        return doc, n

    def write(self, appends: list[tuple[str, bytes]], snapshots: dict[str, bytes]) -> None:
        """Replace the history of `snapshots`' rooms, then append updates; one transaction.

        A snapshot covers every update stored before it; `appends` are the ones after it.
        """
        now = int(time.time() * 1000)
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                for room, snap in snapshots.items():
                    db.execute("DELETE FROM updates WHERE room = ?", (room,))
                    db.execute(
                        "INSERT INTO snapshots (room, data, saved_ms) VALUES (?, ?, ?) "
                        "ON CONFLICT(room) DO UPDATE SET data = excluded.data, saved_ms = excluded.saved_ms",
                        (room, snap, now),
                    )
                if appends:
                    db.executemany("INSERT INTO updates (room, data) VALUES (?, ?)", appends)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def compact(self, room: str) -> int:
        """Squash a room's stored history (room not loaded); returns rows squashed."""
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                snap = db.execute("SELECT data FROM snapshots WHERE room = ?", (room,)).fetchone()
                rows = db.execute("SELECT id, data FROM updates WHERE room = ? ORDER BY id", (room,)).fetchall()
                if not rows:
                    db.execute("COMMIT")
                    return 0
                doc = Doc()
                for blob in ([snap[0]] if snap else []) + [r[1] for r in rows]:
                    doc.apply_update(blob)
                db.execute("DELETE FROM updates WHERE room = ? AND id <= ?", (room, rows[-1][0]))
                db.execute(
                    "INSERT INTO snapshots (room, data, saved_ms) VALUES (?, ?, ?) "
                    "ON CONFLICT(room) DO UPDATE SET data = excluded.data, saved_ms = excluded.saved_ms",
                    (room, doc.get_update(), int(time.time() * 1000)),
                )
                db.execute("COMMIT")
                return len(rows)
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def rooms(self) -> list[str]:
        with self._lock:
            rows = self._db.execute("SELECT room FROM snapshots UNION SELECT DISTINCT room FROM updates").fetchall()
        return sorted(r[0] for r in rows)

    def stats(self, room: str) -> dict[str, int]:
        with self._lock:
            n, size = self._db.execute("SELECT COUNT(*), COALESCE(SUM(LENGTH(data)), 0) FROM updates WHERE room = ?", (room,)).fetchone()
            snap = self._db.execute("SELECT LENGTH(data) FROM snapshots WHERE room = ?", (room,)).fetchone()
        return {"updates": n, "update_bytes": size, "snapshot_bytes": snap[0] if snap else 0}

    def close(self) -> None:
        with self._lock:
            self._db.close()


class Writer:
    """Batches applied updates and commits them from a worker thread every `interval` s.

    The room only appends to a list (no await, no I/O) on the hot path.
    """

    def __init__(self, store: Store, interval: float = 0.05) -> None:
        self.store = store
        self.interval = interval
        self._appends: list[tuple[str, bytes]] = []
        self._snapshots: dict[str, bytes] = {}
        self._oldest: float | None = None
        self._task: asyncio.Task[None] | None = None
        self._flush_lock = asyncio.Lock()
        self.last_flush_s = 0.0
        self.rows_written = 0
        self.errors = 0

    def append(self, room: str, update: bytes) -> None:
        if self._oldest is None:
            self._oldest = time.monotonic()
        self._appends.append((room, update))

    def snapshot(self, room: str, state: bytes) -> None:
        """Replace the room's history by `state`, which must include every appended update."""
        if self._oldest is None:
            self._oldest = time.monotonic()
        # queued updates of this room are inside `state`: they need not be written any more
        self._appends = [a for a in self._appends if a[0] != room]
        self._snapshots[room] = state

    @property
    def pending(self) -> int:
        return len(self._appends) + len(self._snapshots)

    @property
    def lag(self) -> float:
        """Seconds the oldest unwritten update has waited."""
        return 0.0 if self._oldest is None else time.monotonic() - self._oldest

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="store-writer")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.flush()
            except Exception:  # keep the data queued and retry; never kill the writer
                self.errors += 1
                log.exception("store write failed; will retry")

    async def flush(self) -> None:
        async with self._flush_lock:
            if not self._appends and not self._snapshots:
                return
            appends, snaps = self._appends, self._snapshots
            self._appends, self._snapshots, oldest = [], {}, self._oldest
            self._oldest = None
            t0 = time.monotonic()
            try:
                await asyncio.to_thread(self.store.write, appends, snaps)
            except BaseException:
                # put them back in front, in order, so nothing is lost or reordered
                self._appends = appends + self._appends
                for room, snap in snaps.items():
                    self._snapshots.setdefault(room, snap)
                self._oldest = oldest
                raise
            self.last_flush_s = time.monotonic() - t0
            self.rows_written += len(appends)

    async def close(self) -> None:
        """Stop the timer and write everything still queued."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        await self.flush()
