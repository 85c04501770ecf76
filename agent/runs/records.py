"""Durable agent run records: the `runs` table, in `<data>/runs.sqlite3` (embedded mode) or in
PostgreSQL (cluster mode, shared by every node), written once over `common.sql`.

Why a database of its own and not the room store (`server/store.py`): run records are agent
observability (what a prompt made the agent do, so people can inspect and undo it), not
document state. The room store holds exactly the CRDT updates a room applied and nothing
else; mixing rows of another kind into it would couple the agent to server internals and to
its compaction. Losing it loses history, never drawings (undo works from the run id tagged on
the strokes in the document).

Layout: one row per run, the record as JSON, and as columns what is queried: its `status`, `seq`
for insertion order, its `summary` (what `GET /rooms/NAME/runs` serves, read without decoding
the record), `created` and its size in `bytes` (what a room's records are trimmed by). Writes
happen on one writer thread (`agent.runs.store.RunStore`).

A damaged SQLite file never stops the server: it is moved aside (`runs.sqlite3.damaged-<time>`,
kept for forensics) with a log line and a fresh one is started; a read that meets damage later
costs that room's history. PostgreSQL that cannot answer raises (the routes answer 503).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from psycopg_pool import ConnectionPool
from pydantic import ValidationError

from common.sql import Conn, PgSql, Sql, SqlError, SqliteSql

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

COLUMNS = (("created", "BIGINT"), ("bytes", "BIGINT"), ("summary", "TEXT"))
"""Version 2 adds what `GET /runs` and the trimming read, so they never decode a record: when
the run was made, the record's size in bytes, and its summary (`RunSummary` as JSON, bounded)."""


class RunRow(NamedTuple):
    """One record to write: its run's id, room and status, the record (JSON), and its summary
    (JSON) and creation time (ms), which are derived from the record when not given."""

    id: str
    room: str
    status: str
    data: str
    summary: str | None = None
    created: int | None = None


def summary_of(data: str) -> tuple[str, int]:
    """A record's summary (JSON) and creation time, derived from the record itself (rows written
    before version 2, or without them); a record that does not parse gets what can be read of it."""
    from agent.runs.store import AgentRun, dump_json  # here: the store imports this module

    try:
        run = AgentRun.model_validate_json(data)
    except (ValidationError, ValueError):
        try:
            record: Any = json.loads(data)
        except ValueError:
            record = {}
        record = record if isinstance(record, dict) else {}
        created = record.get("created") if isinstance(record.get("created"), int) else 0
        return json.dumps({k: record[k] for k in ("id", "room", "status") if isinstance(record.get(k), str)}), created
    return dump_json(run.summary()), run.created


def _version_2(c: Conn) -> None:
    """The columns of version 2, back-filled one record at a time (a record is read, never all)."""
    have = c.columns("runs")
    for name, kind in COLUMNS:
        if name not in have:
            c.execute(f"ALTER TABLE runs ADD COLUMN {name} {kind}")
    for (seq,) in c.rows("SELECT seq FROM runs WHERE summary IS NULL ORDER BY seq"):
        row = c.row("SELECT data FROM runs WHERE seq = ?", (seq,))
        data = row[0] if row and isinstance(row[0], str) else ""
        summary, created = summary_of(data)
        c.execute("UPDATE runs SET summary = ?, created = ?, bytes = ? WHERE seq = ?", (summary, created, len(data.encode()), seq))


class RunRecords:
    """Where run records are kept, thread-safe: synchronous, called from a worker thread
    (`agent.runs.store.RunStore` does). Per room at most `per_room` records and `room_bytes`
    bytes of them: past either, the oldest finished ones go."""

    def __init__(self, sql: Sql, per_room: int = 200, room_bytes: int = 8 << 20) -> None:
        self.sql = sql
        self.per_room = per_room
        self.room_bytes = room_bytes
        self.shared = sql.shared
        """Other processes write it too: read it through, and never take their runs in progress
        for interrupted ones."""
        sql.migrate("runs", [sql.create(DDL), _version_2])

    @classmethod
    def open(cls, where: Path | ConnectionPool, per_room: int = 200, room_bytes: int = 8 << 20) -> RunRecords:
        """The records in the data folder `where` (SQLite, `runs.sqlite3`) or in PostgreSQL (a pool)."""
        if isinstance(where, ConnectionPool):
            return cls(PgSql(where), per_room, room_bytes)
        return cls(SqliteSql(Path(where) / FILE, "run records database"), per_room, room_bytes)

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

    def summaries(self, room: str, limit: int, before: str | None = None) -> tuple[list[tuple[str, int, str]], str | None]:
        """(id, created, summary JSON) of the room's newest `limit` runs older than run `before`
        (the newest if None; none if `before` is not a run of the room), oldest first; and the id
        to pass as `before` for the page before it (None: no older runs). Reads the columns only,
        never a record (but for rows written without a summary); none if a damaged file cannot be read."""
        try:
            with self.sql.read() as c:
                if before is None:
                    rows = c.rows("SELECT id, created, summary FROM runs WHERE room = ? ORDER BY seq DESC LIMIT ?", (room, limit + 1))
                else:
                    rows = c.rows("SELECT id, created, summary FROM runs WHERE room = ? AND seq < "
                                  "(SELECT seq FROM runs WHERE room = ? AND id = ?) ORDER BY seq DESC LIMIT ?", (room, room, before, limit + 1))
                out = [(run_id, created or 0, summary if summary else summary_of(self._data(c, run_id))[0])
                       for run_id, created, summary in rows[:limit]]
        except SqlError:
            if self.shared:
                raise
            log.exception("reading the run summaries of room %s", room)
            return [], None
        out.reverse()
        return out, (out[0][0] if len(rows) > limit else None)

    @staticmethod
    def _data(c: Conn, run_id: str) -> str:
        row = c.row("SELECT data FROM runs WHERE id = ?", (run_id,))
        return row[0] if row and isinstance(row[0], str) else ""

    def load_one(self, room: str, run_id: str) -> str | None:
        with self.sql.read() as c:
            row = c.row("SELECT data FROM runs WHERE room = ? AND id = ?", (room, run_id))
        return row[0] if row and isinstance(row[0], str) else None

    def unfinished(self, room: str) -> list[str]:
        """The room's queued and running records, oldest first (a new holder of the room's agent takes them over)."""
        with self.sql.read() as c:
            rows = c.rows("SELECT data FROM runs WHERE room = ? AND status IN ('queued', 'running') ORDER BY seq", (room,))
        return [r[0] for r in rows]

    def unfinished_anywhere(self) -> list[tuple[str, str]]:
        """(room, record) of every queued or running run, oldest first (what a process that owns
        the records finds left over by the one before it)."""
        with self.sql.read() as c:
            rows = c.rows("SELECT room, data FROM runs WHERE status IN ('queued', 'running') ORDER BY seq")
        return [(r[0], r[1]) for r in rows]

    def write(self, upserts: Sequence[RunRow | tuple[str, str, str, str]], deletes: list[str]) -> None:
        """Upsert records and delete ids, in one transaction; then trim each touched room to its
        newest `per_room` records and `room_bytes` bytes (finished ones go first, oldest first;
        the newest record always stays)."""
        rows = [RunRow(*u) for u in upserts]
        values = []
        for r in rows:
            summary, created = (r.summary, r.created) if r.summary is not None and r.created is not None else summary_of(r.data)
            values.append((r.id, r.room, r.status, r.data, summary, created, len(r.data.encode("utf-8", "replace"))))
        rooms = {r.room for r in rows}
        with self.sql.transaction() as c:
            c.executemany("INSERT INTO runs (id, room, status, data, summary, created, bytes) VALUES (?, ?, ?, ?, ?, ?, ?) "
                          "ON CONFLICT (id) DO UPDATE SET status = excluded.status, data = excluded.data, summary = excluded.summary, "
                          "bytes = excluded.bytes", values)
            c.executemany("DELETE FROM runs WHERE id = ?", [(d,) for d in deletes])
            for room in rooms:
                c.execute("DELETE FROM runs WHERE room = ? AND status IN ('done', 'failed') AND seq NOT IN "
                          "(SELECT seq FROM runs WHERE room = ? ORDER BY seq DESC LIMIT ?)", (room, room, self.per_room))
                c.execute("DELETE FROM runs WHERE seq IN (SELECT seq FROM (SELECT seq, status, bytes, "
                          "SUM(COALESCE(bytes, 0)) OVER (ORDER BY seq DESC) AS total FROM runs WHERE room = ?) newest_first "
                          "WHERE total > ? AND total > COALESCE(bytes, 0) AND status IN ('done', 'failed'))", (room, self.room_bytes))

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
