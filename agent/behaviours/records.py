"""Durable behaviours: `<data>/behaviours.sqlite3` — behaviours (code and state included),
the versions of their code that kept firings ran, their most recent firings, and per room the
strokes they had seen when the agent last left (so strokes drawn before it is back count).

Why a database of its own, next to the run records (`agent/runs/records.py`): behaviours are agent
state, not document state; the room store holds only the CRDT updates a room applied. Losing
this file loses behaviours and their history, never drawings (a firing's strokes carry its
id in the document, so undo works from the document itself). A damaged file is set aside and
a fresh one started (`common.sqlite.open_or_set_aside`).

Writes come from one writer thread (`agent.behaviours.store.BehaviourStore`), as JSON rows.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from common.sqlite import open_or_set_aside, transaction

log = logging.getLogger("inhabit.agent")

SCHEMA = """
CREATE TABLE IF NOT EXISTS behaviours (
    id TEXT PRIMARY KEY,
    room TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS versions (
    behaviour TEXT NOT NULL,
    version INTEGER NOT NULL,
    code TEXT NOT NULL,
    PRIMARY KEY (behaviour, version)
);
CREATE TABLE IF NOT EXISTS firings (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    behaviour TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS firings_behaviour ON firings (behaviour, seq);
CREATE TABLE IF NOT EXISTS seen (
    room TEXT PRIMARY KEY,
    ids TEXT NOT NULL
);
"""


@dataclass
class Batch:
    """One write transaction: upserts and deletes gathered over an event-loop tick."""

    behaviours: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (room, json)
    removed: set[str] = field(default_factory=set)
    versions: list[tuple[str, int, str]] = field(default_factory=list)
    firings: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (behaviour, json)
    seen: dict[str, str | None] = field(default_factory=dict)  # room -> stroke ids, one a line (None: forget)

    def __bool__(self) -> bool:
        return bool(self.behaviours or self.removed or self.versions or self.firings or self.seen)


class BehaviourRecords(Protocol):
    """Where behaviours are kept: `BehaviourDB` (this SQLite file, one process) or, in cluster
    mode, `agent.behaviours.pg_records.PgBehaviourDB` (PostgreSQL, shared by every node). Synchronous:
    called from a worker thread (`agent.behaviours.store.BehaviourStore` does)."""

    shared: bool
    """Other processes write it too: a node keeps in memory only the rooms whose agent it holds
    (`load_room` when it takes one) and reads the others through."""

    def load(self) -> list[str]:
        """Every behaviour (JSON); only called when not `shared`."""
        ...

    def load_room(self, room: str) -> list[str]: ...

    def scheduled_rooms(self) -> list[str]:
        """Rooms with an active behaviour on a schedule (someone must hold them to fire it)."""
        ...

    def firings(self, behaviour: str, limit: int) -> list[str]: ...

    def firing(self, firing_id: str) -> str | None: ...

    def seen(self, room: str) -> str | None: ...

    def code(self, behaviour: str, version: int) -> str | None: ...

    def write(self, batch: Batch) -> None: ...

    def close(self) -> None: ...


class BehaviourDB:
    """Synchronous, thread-safe access to the behaviours database."""

    shared = False

    def __init__(self, path: str | Path, firings_kept: int = 50) -> None:
        self.path = Path(path)
        self.kept = firings_kept
        self._lock = threading.Lock()
        self._db = open_or_set_aside(self.path, SCHEMA, "behaviours database")

    def load(self) -> list[str]:
        """Every behaviour (JSON)."""
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT data FROM behaviours ORDER BY rowid") if isinstance(r[0], str)]

    def load_room(self, room: str) -> list[str]:
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT data FROM behaviours WHERE room = ? ORDER BY rowid", (room,)) if isinstance(r[0], str)]

    def scheduled_rooms(self) -> list[str]:
        with self._lock:
            rows = self._db.execute("SELECT DISTINCT room FROM behaviours WHERE json_extract(data, '$.status') = 'active' AND EXISTS "
                                    "(SELECT 1 FROM json_each(data, '$.on') WHERE json_type(value) = 'object')").fetchall()
        return [r[0] for r in rows]

    def firings(self, behaviour: str, limit: int) -> list[str]:
        """The behaviour's newest `limit` firings (JSON), newest first."""
        try:
            with self._lock:
                rows = self._db.execute("SELECT data FROM firings WHERE behaviour = ? ORDER BY seq DESC LIMIT ?", (behaviour, limit)).fetchall()
        except sqlite3.DatabaseError:
            log.exception("reading the firings of %s from %s", behaviour, self.path)
            return []
        return [r[0] for r in rows if isinstance(r[0], str)]

    def firing(self, firing_id: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT data FROM firings WHERE id = ?", (firing_id,)).fetchone()
        return row[0] if row and isinstance(row[0], str) else None

    def seen(self, room: str) -> str | None:
        """The stroke ids the room's behaviours had seen when the agent last left it."""
        with self._lock:
            row = self._db.execute("SELECT ids FROM seen WHERE room = ?", (room,)).fetchone()
        return row[0] if row else None

    def code(self, behaviour: str, version: int) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT code FROM versions WHERE behaviour = ? AND version = ?", (behaviour, version)).fetchone()
        return row[0] if row else None

    def write(self, batch: Batch) -> None:
        """Apply `batch` in one transaction; then trim the touched behaviours' firings to the
        newest `kept`, and their code versions to the ones those firings (or the current one) use."""
        touched = {b for b, _ in batch.firings.values()} | set(batch.behaviours)
        with self._lock, transaction(self._db) as db:
            db.executemany("INSERT INTO behaviours (id, room, data) VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE SET data = excluded.data",
                           [(i, room, data) for i, (room, data) in batch.behaviours.items()])
            db.executemany("INSERT OR IGNORE INTO versions (behaviour, version, code) VALUES (?, ?, ?)", batch.versions)
            db.executemany("INSERT INTO firings (id, behaviour, data) VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE SET data = excluded.data",
                           [(i, b, data) for i, (b, data) in batch.firings.items()])
            db.executemany("INSERT INTO seen (room, ids) VALUES (?, ?) ON CONFLICT(room) DO UPDATE SET ids = excluded.ids",
                           [(room, ids) for room, ids in batch.seen.items() if ids is not None])
            db.executemany("DELETE FROM seen WHERE room = ?", [(room,) for room, ids in batch.seen.items() if ids is None])
            for bid in batch.removed:
                for table, column in (("behaviours", "id"), ("versions", "behaviour"), ("firings", "behaviour")):
                    db.execute(f"DELETE FROM {table} WHERE {column} = ?", (bid,))
            for bid in touched - batch.removed:
                db.execute("DELETE FROM firings WHERE behaviour = ? AND seq NOT IN (SELECT seq FROM firings WHERE behaviour = ? ORDER BY seq DESC LIMIT ?)",
                           (bid, bid, self.kept))
                db.execute("DELETE FROM versions WHERE behaviour = ? AND version < COALESCE((SELECT MIN(json_extract(data, '$.version')) "
                           "FROM firings WHERE behaviour = ?), (SELECT MAX(version) FROM versions WHERE behaviour = ?))", (bid, bid, bid))

    def close(self) -> None:
        with self._lock:
            self._db.close()
