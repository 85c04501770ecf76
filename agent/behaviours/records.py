"""Durable behaviours: behaviours (code and state included), the versions of their code that
kept firings ran, their most recent firings, and per room the strokes they had seen when the
agent last left (so strokes drawn before it is back count). In `<data>/behaviours.sqlite3`
(embedded mode) or in PostgreSQL (cluster mode, shared by every node), written once over
`common.sql`, with the same tables in both.

Why a database of its own, next to the run records (`agent/runs/records.py`): behaviours are agent
state, not document state; the room store holds only the CRDT updates a room applied. Losing
this file loses behaviours and their history, never drawings (a firing's strokes carry its
id in the document, so undo works from the document itself). A damaged file is set aside and
a fresh one started (`common.sqlite.open_or_set_aside`).

Rows are JSON, with what is queried as columns (`status`, `every`: the schedule's period, or
NULL; a firing's code `version`), so no query needs a dialect. Writes come from one writer
thread (`agent.behaviours.store.BehaviourStore`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from psycopg_pool import ConnectionPool

from common.sql import Conn, PgSql, Sql, SqlError, SqliteSql, Step

log = logging.getLogger("inhabit.agent")

FILE = "behaviours.sqlite3"

DDL = """
CREATE TABLE IF NOT EXISTS behaviours (
    seq {serial},
    id TEXT NOT NULL UNIQUE,
    room TEXT NOT NULL,
    status TEXT NOT NULL,
    every DOUBLE PRECISION,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS behaviours_room ON behaviours (room, seq);
CREATE TABLE IF NOT EXISTS behaviour_versions (
    behaviour TEXT NOT NULL,
    version INTEGER NOT NULL,
    code TEXT NOT NULL,
    PRIMARY KEY (behaviour, version)
);
CREATE TABLE IF NOT EXISTS behaviour_firings (
    seq {serial},
    id TEXT NOT NULL UNIQUE,
    behaviour TEXT NOT NULL,
    version INTEGER NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS behaviour_firings_behaviour ON behaviour_firings (behaviour, seq);
CREATE TABLE IF NOT EXISTS behaviour_seen (
    room TEXT PRIMARY KEY,
    ids TEXT NOT NULL
)
"""


@dataclass
class Batch:
    """One write transaction: upserts and deletes gathered over an event-loop tick."""

    behaviours: dict[str, tuple[str, str, float | None, str]] = field(default_factory=dict)  # id -> (room, status, every, json)
    removed: set[str] = field(default_factory=set)
    versions: list[tuple[str, int, str]] = field(default_factory=list)
    firings: dict[str, tuple[str, int, str]] = field(default_factory=dict)  # id -> (behaviour, version, json)
    seen: dict[str, str | None] = field(default_factory=dict)  # room -> stroke ids, one a line (None: forget)

    def __bool__(self) -> bool:
        return bool(self.behaviours or self.removed or self.versions or self.firings or self.seen)


def queried(data: str) -> tuple[str, float | None]:
    """The columns a behaviour's JSON gives its row: its status and its schedule's period."""
    try:
        record: Any = json.loads(data)
    except ValueError:
        return "", None
    on = record.get("on") if isinstance(record, dict) else None
    every = next((t["every"] for t in on or [] if isinstance(t, dict) and isinstance(t.get("every"), int | float)), None)
    return str(record.get("status", "")) if isinstance(record, dict) else "", every


def _version_of(data: str) -> int:
    try:
        version = json.loads(data).get("version")
    except (ValueError, AttributeError):
        return 0
    return version if isinstance(version, int) else 0


def _steps(sql: Sql) -> list[Step]:
    create = sql.create(DDL)

    def version_1(c: Conn) -> None:
        """The first layouts become this one: SQLite's `versions`, `firings`, `seen` take the
        names PostgreSQL gave them; both gain the queried columns, back-filled from the JSON."""
        tables = c.tables()
        for old, new, mark in (("versions", "behaviour_versions", "code"), ("firings", "behaviour_firings", "behaviour"), ("seen", "behaviour_seen", "ids")):
            if old in tables and new not in tables and mark in c.columns(old):  # PostgreSQL's `versions` is the rooms'
                c.execute(f"ALTER TABLE {old} RENAME TO {new}")
        c.execute("DROP INDEX IF EXISTS firings_behaviour")
        tables = c.tables()
        old_behaviours: list[tuple[Any, ...]] = []
        if "behaviours" in tables and "status" not in (columns := c.columns("behaviours")):
            old_behaviours = c.rows(f"SELECT id, room, data FROM behaviours ORDER BY {'seq' if 'seq' in columns else 'rowid'}")
            c.execute("DROP TABLE behaviours")
        fill_versions = "behaviour_firings" in tables and "version" not in c.columns("behaviour_firings")
        if fill_versions:
            c.execute("ALTER TABLE behaviour_firings ADD COLUMN version INTEGER NOT NULL DEFAULT 0")
        create(c)
        c.executemany("INSERT INTO behaviours (id, room, status, every, data) VALUES (?, ?, ?, ?, ?)",
                      [(bid, room, *queried(data), data) for bid, room, data in old_behaviours])
        if fill_versions:
            c.executemany("UPDATE behaviour_firings SET version = ? WHERE id = ?",
                          [(_version_of(data), fid) for fid, data in c.rows("SELECT id, data FROM behaviour_firings")])

    return [version_1]


class BehaviourRecords:
    """Where behaviours are kept, thread-safe; synchronous: called from a worker thread
    (`agent.behaviours.store.BehaviourStore` does)."""

    def __init__(self, sql: Sql, firings_kept: int = 50) -> None:
        self.sql = sql
        self.kept = firings_kept
        self.shared = sql.shared
        """Other processes write it too: a node keeps in memory only the rooms whose agent it holds
        (`load_room` when it takes one) and reads the others through."""
        sql.migrate("behaviours", _steps(sql))

    @classmethod
    def open(cls, where: Path | ConnectionPool, firings_kept: int = 50) -> BehaviourRecords:
        """The behaviours in the data folder `where` (SQLite, `behaviours.sqlite3`) or in PostgreSQL (a pool)."""
        if isinstance(where, ConnectionPool):
            return cls(PgSql(where), firings_kept)
        return cls(SqliteSql(Path(where) / FILE, "behaviours database"), firings_kept)

    def _rows(self, query: str, args: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        with self.sql.read() as c:
            return c.rows(query, args)

    def load(self) -> list[str]:
        """Every behaviour (JSON); only called when not `shared`."""
        return [r[0] for r in self._rows("SELECT data FROM behaviours ORDER BY seq") if isinstance(r[0], str)]

    def load_room(self, room: str) -> list[str]:
        return [r[0] for r in self._rows("SELECT data FROM behaviours WHERE room = ? ORDER BY seq", (room,)) if isinstance(r[0], str)]

    def scheduled_rooms(self) -> list[str]:
        """Rooms with an active behaviour on a schedule (someone must hold them to fire it)."""
        return [r[0] for r in self._rows("SELECT DISTINCT room FROM behaviours WHERE status = 'active' AND every IS NOT NULL ORDER BY room")]

    def firings(self, behaviour: str, limit: int) -> list[str]:
        """The behaviour's newest `limit` firings (JSON), newest first; none if a damaged file cannot be read."""
        try:
            rows = self._rows("SELECT data FROM behaviour_firings WHERE behaviour = ? ORDER BY seq DESC LIMIT ?", (behaviour, limit))
        except SqlError:
            if self.shared:  # PostgreSQL away: the caller says so
                raise
            log.exception("reading the firings of %s", behaviour)
            return []
        return [r[0] for r in rows if isinstance(r[0], str)]

    def firing(self, firing_id: str) -> str | None:
        rows = self._rows("SELECT data FROM behaviour_firings WHERE id = ?", (firing_id,))
        return rows[0][0] if rows and isinstance(rows[0][0], str) else None

    def seen(self, room: str) -> str | None:
        """The stroke ids the room's behaviours had seen when the agent last left it."""
        rows = self._rows("SELECT ids FROM behaviour_seen WHERE room = ?", (room,))
        return rows[0][0] if rows else None

    def code(self, behaviour: str, version: int) -> str | None:
        rows = self._rows("SELECT code FROM behaviour_versions WHERE behaviour = ? AND version = ?", (behaviour, version))
        return rows[0][0] if rows else None

    def write(self, batch: Batch) -> None:
        """Apply `batch` in one transaction; then trim the touched behaviours' firings to the
        newest `kept`, and their code versions to the ones those firings (or the current one) use."""
        touched = {b for b, _, _ in batch.firings.values()} | set(batch.behaviours)
        with self.sql.transaction() as c:
            c.executemany("INSERT INTO behaviours (id, room, status, every, data) VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE "
                          "SET status = excluded.status, every = excluded.every, data = excluded.data",
                          [(i, *row) for i, row in batch.behaviours.items()])
            c.executemany("INSERT INTO behaviour_versions (behaviour, version, code) VALUES (?, ?, ?) ON CONFLICT DO NOTHING", batch.versions)
            c.executemany("INSERT INTO behaviour_firings (id, behaviour, version, data) VALUES (?, ?, ?, ?) ON CONFLICT (id) DO UPDATE "
                          "SET version = excluded.version, data = excluded.data", [(i, *row) for i, row in batch.firings.items()])
            c.executemany("INSERT INTO behaviour_seen (room, ids) VALUES (?, ?) ON CONFLICT (room) DO UPDATE SET ids = excluded.ids",
                          [(room, ids) for room, ids in batch.seen.items() if ids is not None])
            c.executemany("DELETE FROM behaviour_seen WHERE room = ?", [(room,) for room, ids in batch.seen.items() if ids is None])
            for table, column in (("behaviours", "id"), ("behaviour_versions", "behaviour"), ("behaviour_firings", "behaviour")):
                c.executemany(f"DELETE FROM {table} WHERE {column} = ?", [(bid,) for bid in batch.removed])
            for bid in touched - batch.removed:
                c.execute("DELETE FROM behaviour_firings WHERE behaviour = ? AND seq NOT IN "
                          "(SELECT seq FROM behaviour_firings WHERE behaviour = ? ORDER BY seq DESC LIMIT ?)", (bid, bid, self.kept))
                c.execute("DELETE FROM behaviour_versions WHERE behaviour = ? AND version < COALESCE("
                          "(SELECT MIN(version) FROM behaviour_firings WHERE behaviour = ?), "
                          "(SELECT MAX(version) FROM behaviour_versions WHERE behaviour = ?))", (bid, bid, bid))

    # the room's history for `common.disk`: firing records (never the behaviours themselves)

    name = "firings"

    def usage(self) -> dict[str, int]:
        """Characters of firing records per room (JSON, nearly all ASCII: its bytes, give or take)."""
        rows = self._rows("SELECT b.room, SUM(length(f.data)) FROM behaviour_firings f JOIN behaviours b ON b.id = f.behaviour GROUP BY b.room")
        return {room: int(n) for room, n in rows if n}

    def trim(self, room: str, keep_bytes: int) -> int:
        """Drop the room's oldest firing records past its newest `keep_bytes` (and the code
        versions only they ran); what was dropped."""
        with self.sql.transaction() as c:
            old = c.rows("SELECT seq, n, behaviour FROM (SELECT f.seq, f.behaviour, length(f.data) AS n, SUM(length(f.data)) OVER "
                         "(ORDER BY f.seq DESC) AS total FROM behaviour_firings f JOIN behaviours b ON b.id = f.behaviour WHERE b.room = ?) "
                         "AS newest WHERE total > ?", (room, keep_bytes))
            c.executemany("DELETE FROM behaviour_firings WHERE seq = ?", [(seq,) for seq, _, _ in old])
            for bid in {b for _, _, b in old}:
                c.execute("DELETE FROM behaviour_versions WHERE behaviour = ? AND version < COALESCE("
                          "(SELECT MIN(version) FROM behaviour_firings WHERE behaviour = ?), "
                          "(SELECT MAX(version) FROM behaviour_versions WHERE behaviour = ?))", (bid, bid, bid))
        if old:
            self.sql.reclaim()
        return sum(int(n) for _, n, _ in old)

    def forget(self, room: str) -> int:
        """Drop the room's behaviours, their code versions and firings, and what they had seen."""
        with self.sql.transaction() as c:
            row = c.row("SELECT SUM(length(f.data)) FROM behaviour_firings f JOIN behaviours b ON b.id = f.behaviour WHERE b.room = ?", (room,))
            ids = [(r[0],) for r in c.rows("SELECT id FROM behaviours WHERE room = ?", (room,))]
            for table, column in (("behaviour_firings", "behaviour"), ("behaviour_versions", "behaviour"), ("behaviours", "id")):
                c.executemany(f"DELETE FROM {table} WHERE {column} = ?", ids)
            c.execute("DELETE FROM behaviour_seen WHERE room = ?", (room,))
        self.sql.reclaim()
        return int(row[0] or 0) if row else 0

    def reclaim(self) -> None:
        self.sql.reclaim()

    def close(self) -> None:
        self.sql.close()
