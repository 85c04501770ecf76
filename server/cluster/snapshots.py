"""The PostgreSQL side of cluster mode: each room's snapshot, stamped with the stream id it covers.

- `rooms`: one row per room, its squashed document and `(stream_ms, stream_seq)`, the id of the
  last stream entry it includes. Loading = this row, then the stream after that id.
- `versions`: the last few compacted states per room (as in SQLite), for rolling a wipe back;
  one is added only when the document changed since the previous snapshot.
- `quarantine`: a snapshot or stream entry that failed to load, kept for a person to look at.

A snapshot is written only if it covers MORE of the stream than the stored one (a conditional
upsert), so two compaction workers overlapping (a lease that expired mid-way) can never move a
room backwards, whichever commits last. Synchronous, like `server.store.Store`: call it from a
worker thread.
"""

from __future__ import annotations

import time

from psycopg_pool import ConnectionPool

from common.postgres import SCHEMA, ensure_schema

from ..store import Row, Snapshot, VersionRow
from .streams import sid

DDL = f"""
CREATE TABLE IF NOT EXISTS {SCHEMA}.rooms (
    room text PRIMARY KEY,
    data bytea NOT NULL,
    stream_ms bigint NOT NULL,
    stream_seq bigint NOT NULL,
    saved_ms bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS {SCHEMA}.versions (
    id bigserial PRIMARY KEY,
    room text NOT NULL,
    data bytea NOT NULL,
    saved_ms bigint NOT NULL,
    strokes int NOT NULL
);
CREATE INDEX IF NOT EXISTS versions_room ON {SCHEMA}.versions (room, id);
CREATE TABLE IF NOT EXISTS {SCHEMA}.quarantine (
    id bigserial PRIMARY KEY,
    room text NOT NULL,
    kind text NOT NULL,
    data bytea,
    error text NOT NULL,
    at bigint NOT NULL
);
"""

SAVE = f"""
WITH old AS (SELECT data FROM {SCHEMA}.rooms WHERE room = %(room)s)
INSERT INTO {SCHEMA}.rooms AS r (room, data, stream_ms, stream_seq, saved_ms) VALUES (%(room)s, %(data)s, %(ms)s, %(seq)s, %(now)s)
ON CONFLICT (room) DO UPDATE SET data = excluded.data, stream_ms = excluded.stream_ms,
    stream_seq = excluded.stream_seq, saved_ms = excluded.saved_ms
WHERE (r.stream_ms, r.stream_seq) < (excluded.stream_ms, excluded.stream_seq)
RETURNING (SELECT data FROM old) IS DISTINCT FROM r.data
"""
"""Upsert if it covers more; returns a row (did the document change?) only if it was written."""

LOAD_TIMEOUT_S = 3.0


def _now_ms() -> int:
    return int(time.time() * 1000)


class Snapshots:
    """Synchronous, thread-safe access to the rooms' durable state (the pool hands out connections)."""

    def __init__(self, pool: ConnectionPool, versions_kept: int = 10) -> None:
        self.pool = pool
        self.versions_kept = versions_kept
        ensure_schema(pool, DDL)

    def load(self, room: str) -> tuple[Row | None, str]:
        """The room's snapshot (None if it has none) and the stream id it covers ("0-0": none)."""
        with self.pool.connection(timeout=LOAD_TIMEOUT_S) as conn:
            row = conn.execute(f"SELECT data, stream_ms, stream_seq FROM {SCHEMA}.rooms WHERE room = %s", (room,)).fetchone()
        if row is None:
            return None, "0-0"
        return Row("snapshot", 0, bytes(row[0])), f"{row[1]}-{row[2]}"

    def position(self, room: str) -> str:
        """The stream id the stored snapshot covers ("0-0": none)."""
        with self.pool.connection(timeout=LOAD_TIMEOUT_S) as conn:
            row = conn.execute(f"SELECT stream_ms, stream_seq FROM {SCHEMA}.rooms WHERE room = %s", (room,)).fetchone()
        return f"{row[0]}-{row[1]}" if row else "0-0"

    def save(self, room: str, snap: Snapshot, covers: str) -> bool:
        """Store `snap` as covering every stream entry up to `covers`, unless the stored one
        covers as much already; keep a version if the document changed. True if written."""
        ms, seq = sid(covers)
        now = _now_ms()
        with self.pool.connection() as conn, conn.transaction():
            row = conn.execute(SAVE, {"room": room, "data": snap.data, "ms": ms, "seq": seq, "now": now}).fetchone()
            if row is None:
                return False
            if row[0] and self.versions_kept and snap.strokes:  # an empty canvas is nothing to roll back to
                conn.execute(f"INSERT INTO {SCHEMA}.versions (room, data, saved_ms, strokes) VALUES (%s, %s, %s, %s)",
                             (room, snap.data, now, snap.strokes))
                conn.execute(f"DELETE FROM {SCHEMA}.versions WHERE room = %s AND id NOT IN "
                             f"(SELECT id FROM {SCHEMA}.versions WHERE room = %s ORDER BY id DESC LIMIT %s)",
                             (room, room, self.versions_kept))
        return True

    # what the embedded store offers too (server/versions.py, loading's fallback, quarantine)

    def versions(self, room: str) -> list[VersionRow]:
        with self.pool.connection() as conn:
            rows = conn.execute(f"SELECT id, saved_ms, strokes FROM {SCHEMA}.versions WHERE room = %s ORDER BY id DESC", (room,)).fetchall()
        return [VersionRow(*r) for r in rows]

    def version(self, room: str, version_id: int) -> bytes | None:
        with self.pool.connection() as conn:
            row = conn.execute(f"SELECT data FROM {SCHEMA}.versions WHERE room = %s AND id = %s", (room, version_id)).fetchone()
        return bytes(row[0]) if row else None

    def latest_version(self, room: str) -> list[Row]:
        with self.pool.connection() as conn:
            row = conn.execute(f"SELECT id, data FROM {SCHEMA}.versions WHERE room = %s ORDER BY id DESC LIMIT 1", (room,)).fetchone()
        return [Row("version", row[0], bytes(row[1]))] if row else []

    def quarantine(self, room: str, bad: list[tuple[Row, str]]) -> None:
        """Keep a copy of rows that failed to load. They stay where they are (a bad snapshot
        until the next compaction replaces it, an entry until its stream is trimmed), skipped
        by every load, which copies them again."""
        with self.pool.connection() as conn, conn.transaction():
            for row, error in bad:
                conn.execute(f"INSERT INTO {SCHEMA}.quarantine (room, kind, data, error, at) VALUES (%s, %s, %s, %s, %s)",
                             (room, row.kind, row.data, error, _now_ms()))

    def close(self) -> None:
        self.pool.close()
