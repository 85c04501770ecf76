"""What both room stores keep the same way, written once over `common.sql`: the last few
compacted states of a room (`versions`, so an editor can roll a wipe back) and the rows that
failed to load (`quarantine`, kept for a person to look at), with the row types they return.

Why apart from the stores: the embedded store (`server.store.Store`, SQLite, with its updates
log) and the cluster's (`server.cluster.snapshots.Snapshots`, PostgreSQL, whose log is the
Redis stream) differ in how a room's history is logged, not in how versions and quarantine are
kept. Each store calls these on its own connection, inside its own transaction when writing,
so the embedded writer's per-update commit never passes through here.
"""

from __future__ import annotations

from dataclasses import dataclass

from common.sql import Conn

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

    def __init__(self, versions_kept: int) -> None:
        self.versions_kept = versions_kept

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
        c.execute("INSERT INTO versions (room, data, saved_ms, strokes) VALUES (?, ?, ?, ?)", (room, data, now, strokes))
        c.execute("DELETE FROM versions WHERE room = ? AND id NOT IN (SELECT id FROM versions WHERE room = ? ORDER BY id DESC LIMIT ?)",
                  (room, room, self.versions_kept))

    def quarantine(self, c: Conn, room: str, bad: list[tuple[Row, str]], now: int) -> None:
        """Keep a copy of rows that failed to load, with why."""
        c.executemany("INSERT INTO quarantine (room, kind, data, error, at) VALUES (?, ?, ?, ?, ?)",
                      [(room, row.kind, row.data, error, now) for row, error in bad])
