"""What both room stores keep the same way, written once over `common.sql`: the last few
compacted states of a room (`versions`, so an editor can roll a wipe back), the rows that
failed to load (`quarantine`, kept for a person to look at), with the row types they return,
and when each room was last opened (`room_opened`, for `common.disk`: trimming order, expiry).

Versions are a room's history for `common.disk`: bounded per room by count (`--versions-kept`)
and by bytes (`--room-versions-bytes`, at every keep), trimmed for the data budget, none kept
while the budget refuses new history (`refused`).

Why apart from the stores: the embedded store (`server.store.Store`, SQLite, with its updates
log) and the cluster's (`server.cluster.snapshots.Snapshots`, PostgreSQL, whose log is the
Redis stream) differ in how a room's history is logged, not in how versions and quarantine are
kept. Each store calls these on its own connection, inside its own transaction when writing,
so the embedded writer's per-update commit never passes through here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from common.sql import Conn

log = logging.getLogger("inhabit.store")

DDL = """
CREATE TABLE IF NOT EXISTS versions (
    id {serial},
    room TEXT NOT NULL,
    data {blob} NOT NULL,
    saved_ms BIGINT NOT NULL,
    strokes INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS versions_room ON versions (room, id);
CREATE TABLE IF NOT EXISTS quarantine (
    id {serial},
    room TEXT NOT NULL,
    kind TEXT NOT NULL,
    data {blob},
    error TEXT NOT NULL,
    at BIGINT NOT NULL
)
"""

OPENED_DDL = """
CREATE TABLE IF NOT EXISTS room_opened (
    room TEXT PRIMARY KEY,
    at BIGINT NOT NULL
)
"""
"""When each room was last opened (loaded), in ms since the epoch."""

TRIM = ("SELECT id, length(data) FROM (SELECT id, data, SUM(length(data)) OVER (ORDER BY id DESC) AS total "
        "FROM versions WHERE room = ?) AS newest WHERE total > ?")
"""The room's versions past the newest `keep` bytes (`length` of a blob: its bytes, in both engines)."""


def _never() -> str | None:
    return None


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


class Kept:
    """The `versions` and `quarantine` tables, on a connection the caller holds."""

    def __init__(self, versions_kept: int, max_bytes: int = 0) -> None:
        self.versions_kept = versions_kept
        self.max_bytes = max_bytes
        """Bytes of versions kept per room (0: no bound but the count)."""
        self.refused: Callable[[], str | None] = _never
        """Why no new version may be kept now (`common.disk.DiskBudget.refusal`), or None."""
        self._said: str | None = None

    def versions(self, c: Conn, room: str) -> list[VersionRow]:
        """The room's kept versions, newest first."""
        return [VersionRow(*r) for r in c.rows("SELECT id, saved_ms, strokes FROM versions WHERE room = ? ORDER BY id DESC", (room,))]

    def version(self, c: Conn, room: str, version_id: int) -> bytes | None:
        row = c.row("SELECT data FROM versions WHERE room = ? AND id = ?", (room, version_id))
        return bytes(row[0]) if row else None

    def latest(self, c: Conn, room: str) -> list[Row]:
        """The newest kept version (the fallback when the snapshot is damaged)."""
        row = c.row("SELECT id, data FROM versions WHERE room = ? ORDER BY id DESC LIMIT 1", (room,))
        return [Row("version", row[0], bytes(row[1]))] if row else []

    def keep(self, c: Conn, room: str, data: bytes, now: int, strokes: int) -> None:
        """Keep `data` as the room's newest version, and only the newest `versions_kept`; an
        empty canvas is nothing to roll back to."""
        if not self.versions_kept or not strokes:
            return
        refused = self.refused()
        if refused is not None:
            if refused != self._said:  # one line per episode, not one per compaction
                log.error("room %s: no version kept: %s", room, refused)
            self._said = refused
            return
        self._said = None
        c.execute("INSERT INTO versions (room, data, saved_ms, strokes) VALUES (?, ?, ?, ?)", (room, data, now, strokes))
        c.execute("DELETE FROM versions WHERE room = ? AND id NOT IN (SELECT id FROM versions WHERE room = ? ORDER BY id DESC LIMIT ?)",
                  (room, room, self.versions_kept))
        if self.max_bytes:
            self.trim(c, room, self.max_bytes)

    # the room's history for `common.disk`

    def usage(self, c: Conn) -> dict[str, int]:
        """Bytes of versions per room."""
        return {room: int(n) for room, n in c.rows("SELECT room, SUM(length(data)) FROM versions GROUP BY room") if n}

    def trim(self, c: Conn, room: str, keep_bytes: int) -> int:
        """Drop the room's oldest versions past its newest `keep_bytes`; the bytes dropped."""
        old = c.rows(TRIM, (room, keep_bytes))
        c.executemany("DELETE FROM versions WHERE id = ?", [(vid,) for vid, _ in old])
        return sum(int(n) for _, n in old)

    def forget(self, c: Conn, room: str) -> int:
        """Drop the room's versions, quarantined rows and opening; the bytes of versions dropped."""
        row = c.row("SELECT SUM(length(data)) FROM versions WHERE room = ?", (room,))
        for table in ("versions", "quarantine", "room_opened"):
            c.execute(f"DELETE FROM {table} WHERE room = ?", (room,))
        return int(row[0] or 0) if row else 0

    def opened(self, c: Conn, rooms: Iterable[str], at_ms: int) -> None:
        """`rooms` were open at `at_ms` (an opening never moves back in time)."""
        c.executemany("INSERT INTO room_opened (room, at) VALUES (?, ?) ON CONFLICT (room) DO UPDATE SET at = excluded.at "
                      "WHERE room_opened.at < excluded.at", [(room, at_ms) for room in rooms])

    def last_opened(self, c: Conn, stored: str, now_ms: int) -> dict[str, int]:
        """When each room was last opened; a stored room never seen opened (kept from before this
        was recorded) counts as opened now. `stored`: a query listing the rooms the store holds."""
        c.execute(f"INSERT INTO room_opened (room, at) SELECT room, ? FROM ({stored}) AS held "
                  "WHERE room NOT IN (SELECT room FROM room_opened) ON CONFLICT (room) DO NOTHING", (now_ms,))
        return {room: int(at) for room, at in c.rows("SELECT room, at FROM room_opened")}

    def quarantine(self, c: Conn, room: str, bad: list[tuple[Row, str]], now: int) -> None:
        """Keep a copy of rows that failed to load, with why."""
        c.executemany("INSERT INTO quarantine (room, kind, data, error, at) VALUES (?, ?, ?, ?, ?)",
                      [(room, row.kind, row.data, error, now) for row, error in bad])
