"""Durable agent run records: one small SQLite file, `<data>/runs.sqlite3`.

Why a separate database and not the room store (`server/store.py`): run records are agent
observability (what a prompt made the agent do, so people can inspect and undo it), not
document state. The room store holds exactly the CRDT updates a room applied and nothing
else; mixing rows of another kind into it would couple the agent to server internals and to
its compaction. It shares only the SQLite set-up (`common.sqlite`); losing it loses history, never
drawings (undo works from the run id tagged on the strokes in the document).

Layout: one row per run, the record as JSON, `seq` for insertion order. WAL +
synchronous=NORMAL like the room store. Writes happen on one writer thread (see
`agent.runs.store.RunStore`), reads once per room on first lookup.

A damaged file never stops the server: it is moved aside (`runs.sqlite3.damaged-<time>`, kept
for forensics) with a log line and a fresh one is started; only run history is lost.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path
from typing import Protocol

from common.sqlite import open_or_set_aside, transaction

log = logging.getLogger("inhabit.agent")

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    room TEXT NOT NULL,
    status TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_room ON runs (room, seq);
"""


class RunRecords(Protocol):
    """Where run records are kept: `RunDB` (this SQLite file, one process) or, in cluster mode,
    `agent.runs.pg_records.PgRunDB` (PostgreSQL, shared by every node). Synchronous: called from a
    worker thread (`agent.runs.store.RunStore` does)."""

    per_room: int
    shared: bool
    """Other processes write it too: read it through, and never take their runs in progress
    for interrupted ones."""

    def load(self, room: str) -> list[str]:
        """The room's newest `per_room` records (JSON), oldest first."""
        ...

    def load_one(self, room: str, run_id: str) -> str | None: ...

    def write(self, upserts: list[tuple[str, str, str, str]], deletes: list[str]) -> None:
        """Upsert `(id, room, status, json)` rows and delete ids, in one transaction."""
        ...

    def close(self) -> None: ...


class RunDB:
    """Synchronous, thread-safe access to the runs database."""

    shared = False

    def __init__(self, path: str | Path, per_room: int = 200) -> None:
        self.path = Path(path)
        self.per_room = per_room
        self._lock = threading.Lock()
        self._db = open_or_set_aside(self.path, SCHEMA, "run records database")

    def load(self, room: str) -> list[str]:
        """The room's newest `per_room` records (JSON), oldest first; none if they cannot be read."""
        try:
            with self._lock:
                rows = self._db.execute("SELECT data FROM runs WHERE room = ? ORDER BY seq DESC LIMIT ?", (room, self.per_room)).fetchall()
        except sqlite3.DatabaseError:  # damage found past the start-up check: this room's history is lost
            log.exception("reading the run records of room %s from %s", room, self.path)
            return []
        return [r[0] for r in reversed(rows) if isinstance(r[0], str)]

    def load_one(self, room: str, run_id: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT data FROM runs WHERE room = ? AND id = ?", (room, run_id)).fetchone()
        return row[0] if row and isinstance(row[0], str) else None

    def write(self, upserts: list[tuple[str, str, str, str]], deletes: list[str]) -> None:
        """Upsert `(id, room, status, json)` rows and delete ids, in one transaction; then trim
        each touched room to its newest `per_room` rows (finished ones go first)."""
        rooms = {u[1] for u in upserts}
        with self._lock, transaction(self._db) as db:
            db.executemany(
                "INSERT INTO runs (id, room, status, data) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET status = excluded.status, data = excluded.data",
                upserts,
            )
            db.executemany("DELETE FROM runs WHERE id = ?", [(d,) for d in deletes])
            for room in rooms:
                db.execute(
                    "DELETE FROM runs WHERE room = ? AND status IN ('done', 'failed') AND seq NOT IN "
                    "(SELECT seq FROM runs WHERE room = ? ORDER BY seq DESC LIMIT ?)",
                    (room, room, self.per_room),
                )

    def close(self) -> None:
        with self._lock:
            self._db.close()
