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
import threading
import time
from pathlib import Path

from common.sqlite import open_sqlite, transaction

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

    def write(self, appends: list[tuple[str, bytes]], snapshots: dict[str, bytes]) -> None:
        """Replace the history of `snapshots`' rooms, then append updates; one transaction.

        A snapshot covers every update stored before it; `appends` are the ones after it.
        """
        now = int(time.time() * 1000)
        with self._lock, transaction(self._db) as db:
            for room, snap in snapshots.items():
                db.execute("DELETE FROM updates WHERE room = ?", (room,))
                db.execute(
                    "INSERT INTO snapshots (room, data, saved_ms) VALUES (?, ?, ?) "
                    "ON CONFLICT(room) DO UPDATE SET data = excluded.data, saved_ms = excluded.saved_ms",
                    (room, snap, now),
                )
            if appends:
                db.executemany("INSERT INTO updates (room, data) VALUES (?, ?)", appends)

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

    def gauges(self) -> dict[str, tuple[float, str]]:
        """For /metrics, read at scrape time."""
        return {
            "persistence_lag_seconds": (round(self.lag, 6), "Age of the oldest update not yet committed."),
            "persistence_pending": (self.pending, "Updates and snapshots waiting for the writer."),
            "persistence_last_flush_seconds": (round(self.last_flush_s, 6), "Duration of the last commit."),
            "persistence_rows_written_total": (self.rows_written, "Update rows committed."),
            "persistence_errors_total": (self.errors, "Failed commits (retried)."),
        }

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
