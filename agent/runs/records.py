"""Durable agent run records: the `runs` table, in `<data>/runs.sqlite3` (embedded mode) or in
PostgreSQL (cluster mode, shared by every node), written once over `common.sql`.

Why a database of its own and not the room store (`server/store.py`): run records are agent
observability (what a prompt made the agent do, so people can inspect and undo it), not
document state. The room store holds exactly the CRDT updates a room applied and nothing
else; mixing rows of another kind into it would couple the agent to server internals and to
its compaction. Losing it loses history, never drawings (undo works from the run id tagged on
the strokes in the document).

Layout: one row per run, the record as JSON, its `status` as a column (what is queried), `seq`
for insertion order. Writes happen on one writer thread (`agent.runs.store.RunStore`).

A damaged SQLite file never stops the server: it is moved aside (`runs.sqlite3.damaged-<time>`,
kept for forensics) with a log line and a fresh one is started; a read that meets damage later
costs that room's history. PostgreSQL that cannot answer raises (the routes answer 503).
"""

from __future__ import annotations

import logging
from pathlib import Path

from psycopg_pool import ConnectionPool

from common.sql import PgSql, Sql, SqlError, SqliteSql

log = logging.getLogger("inhabit.agent")

FILE = "runs.sqlite3"

DDL = """
CREATE TABLE IF NOT EXISTS runs (
    seq {serial},
    id TEXT NOT NULL UNIQUE,
    room TEXT NOT NULL,
    status TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_room ON runs (room, seq)
"""
"""Version 1: the table as it has been since runs were first kept, in both engines."""


class RunRecords:
    """Where run records are kept, thread-safe: synchronous, called from a worker thread
    (`agent.runs.store.RunStore` does)."""

    def __init__(self, sql: Sql, per_room: int = 200) -> None:
        self.sql = sql
        self.per_room = per_room
        self.shared = sql.shared
        """Other processes write it too: read it through, and never take their runs in progress
        for interrupted ones."""
        sql.migrate("runs", [sql.create(DDL)])

    @classmethod
    def open(cls, where: Path | ConnectionPool, per_room: int = 200) -> RunRecords:
        """The records in the data folder `where` (SQLite, `runs.sqlite3`) or in PostgreSQL (a pool)."""
        if isinstance(where, ConnectionPool):
            return cls(PgSql(where), per_room)
        return cls(SqliteSql(Path(where) / FILE, "run records database"), per_room)

    def load(self, room: str) -> list[str]:
        """The room's newest `per_room` records (JSON), oldest first; none if a damaged file cannot be read."""
        try:
            with self.sql.read() as c:
                rows = c.rows("SELECT data FROM runs WHERE room = ? ORDER BY seq DESC LIMIT ?", (room, self.per_room))
        except SqlError:
            if self.shared:  # PostgreSQL away: the caller says so (503), nothing is lost
                raise
            log.exception("reading the run records of room %s", room)  # damage: this room's history is lost
            return []
        return [r[0] for r in reversed(rows) if isinstance(r[0], str)]

    def load_one(self, room: str, run_id: str) -> str | None:
        with self.sql.read() as c:
            row = c.row("SELECT data FROM runs WHERE room = ? AND id = ?", (room, run_id))
        return row[0] if row and isinstance(row[0], str) else None

    def unfinished(self, room: str) -> list[str]:
        """The room's queued and running records, oldest first (a new holder of the room's agent takes them over)."""
        with self.sql.read() as c:
            rows = c.rows("SELECT data FROM runs WHERE room = ? AND status IN ('queued', 'running') ORDER BY seq", (room,))
        return [r[0] for r in rows]

    def write(self, upserts: list[tuple[str, str, str, str]], deletes: list[str]) -> None:
        """Upsert `(id, room, status, json)` rows and delete ids, in one transaction; then trim
        each touched room to its newest `per_room` rows (finished ones go first)."""
        rooms = {u[1] for u in upserts}
        with self.sql.transaction() as c:
            c.executemany("INSERT INTO runs (id, room, status, data) VALUES (?, ?, ?, ?) "
                          "ON CONFLICT (id) DO UPDATE SET status = excluded.status, data = excluded.data", upserts)
            c.executemany("DELETE FROM runs WHERE id = ?", [(d,) for d in deletes])
            for room in rooms:
                c.execute("DELETE FROM runs WHERE room = ? AND status IN ('done', 'failed') AND seq NOT IN "
                          "(SELECT seq FROM runs WHERE room = ? ORDER BY seq DESC LIMIT ?)", (room, room, self.per_room))

    # the room's history for `common.disk` (finished runs: never queued or running ones)

    name = "runs"

    def usage(self) -> dict[str, int]:
        """Characters of finished records per room (JSON, nearly all ASCII: its bytes, give or take)."""
        with self.sql.read() as c:
            rows = c.rows("SELECT room, SUM(length(data)) FROM runs WHERE status IN ('done', 'failed') GROUP BY room")
        return {room: int(n) for room, n in rows if n}

    def trim(self, room: str, keep_bytes: int) -> int:
        """Drop the room's oldest finished records past its newest `keep_bytes`; what was dropped."""
        with self.sql.transaction() as c:
            old = c.rows("SELECT seq, n FROM (SELECT seq, length(data) AS n, SUM(length(data)) OVER (ORDER BY seq DESC) AS total "
                         "FROM runs WHERE room = ? AND status IN ('done', 'failed')) AS newest WHERE total > ?", (room, keep_bytes))
            c.executemany("DELETE FROM runs WHERE seq = ?", [(seq,) for seq, _ in old])
        if old:
            self.sql.reclaim()
        return sum(int(n) for _, n in old)

    def forget(self, room: str) -> int:
        """Drop every record of the room."""
        with self.sql.transaction() as c:
            row = c.row("SELECT SUM(length(data)) FROM runs WHERE room = ?", (room,))
            c.execute("DELETE FROM runs WHERE room = ?", (room,))
        self.sql.reclaim()
        return int(row[0] or 0) if row else 0

    def reclaim(self) -> None:
        self.sql.reclaim()

    def close(self) -> None:
        self.sql.close()
