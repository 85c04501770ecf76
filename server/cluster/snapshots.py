"""The PostgreSQL side of cluster mode: each room's snapshot, stamped with the stream id it covers.

- `rooms`: one row per room, its squashed document and `(stream_ms, stream_seq)`, the id of the
  last stream entry it includes. Loading = this row, then the stream after that id.
- `versions`: the last few compacted states per room (as in SQLite, by the same code:
  `server.kept`), for rolling a wipe back; one is added only when the document changed since
  the previous snapshot.
- `quarantine`: a snapshot or stream entry that failed to load, kept for a person to look at;
- `chat`: older chat lines the room's documents let go (as in SQLite, by the same code: `server.chatlog`);
- `room_opened`: when each room was last opened, by any node (`common.disk`).

As a `common.disk.History` (the versions), it is bounded per room and by `--room-ttl` like the
embedded store; `--data-bytes` does not apply (PostgreSQL is not a folder of ours). Forgetting a
room deletes its rows here; entries left of its stream in Redis depend on the deleted snapshot and
are quarantined if the room is opened again (it opens empty).

A snapshot is written only if it covers MORE of the stream than the stored one (a conditional
upsert), so two compaction workers overlapping (a lease that expired mid-way) can never move a
room backwards, whichever commits last. Synchronous, like `server.store.Store`: call it from a
worker thread.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from psycopg_pool import ConnectionPool

from common.sql import PgSql

from .. import chatlog, kept
from ..chatlog import ChatRow
from ..kept import Row, VersionRow
from ..store import Snapshot
from .streams import sid

ROOMS_DDL = """
CREATE TABLE IF NOT EXISTS rooms (
    room text PRIMARY KEY,
    data bytea NOT NULL,
    stream_ms bigint NOT NULL,
    stream_seq bigint NOT NULL,
    saved_ms bigint NOT NULL
);
"""

SAVE = """
WITH old AS (SELECT data FROM rooms WHERE room = ?)
INSERT INTO rooms AS r (room, data, stream_ms, stream_seq, saved_ms) VALUES (?, ?, ?, ?, ?)
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

    name = "versions"
    """Its history, as `common.disk` reports it."""

    def __init__(self, pool: ConnectionPool, versions_kept: int = 10, versions_bytes: int = 0) -> None:
        self.pool = pool
        self.versions_kept = versions_kept
        self.sql = PgSql(pool)
        self.kept = kept.Kept(versions_kept, versions_bytes)
        self.chat = chatlog.ChatLog()
        self.sql.migrate("rooms", [self.sql.create(ROOMS_DDL + kept.DDL), self.sql.create(chatlog.DDL), self.sql.create(kept.OPENED_DDL)])

    def load(self, room: str) -> tuple[Row | None, str]:
        """The room's snapshot (None if it has none) and the stream id it covers ("0-0": none)."""
        with self.sql.read(timeout=LOAD_TIMEOUT_S) as c:
            row = c.row("SELECT data, stream_ms, stream_seq FROM rooms WHERE room = ?", (room,))
        if row is None:
            return None, "0-0"
        return Row("snapshot", 0, bytes(row[0])), f"{row[1]}-{row[2]}"

    def position(self, room: str) -> str:
        """The stream id the stored snapshot covers ("0-0": none)."""
        with self.sql.read(timeout=LOAD_TIMEOUT_S) as c:
            row = c.row("SELECT stream_ms, stream_seq FROM rooms WHERE room = ?", (room,))
        return f"{row[0]}-{row[1]}" if row else "0-0"

    def save(self, room: str, snap: Snapshot, covers: str) -> bool:
        """Store `snap` as covering every stream entry up to `covers`, unless the stored one
        covers as much already; keep a version if the document changed. True if written."""
        ms, seq = sid(covers)
        now = _now_ms()
        with self.sql.transaction() as c:
            row = c.row(SAVE, (room, room, snap.data, ms, seq, now))
            if row is None:
                return False
            if row[0]:
                self.kept.keep(c, room, snap.data, now, snap.strokes)
        return True

    # what the embedded store offers too (server/versions.py, loading's fallback, quarantine), in `server.kept`

    def versions(self, room: str) -> list[VersionRow]:
        with self.sql.read() as c:
            return self.kept.versions(c, room)

    def version(self, room: str, version_id: int) -> bytes | None:
        with self.sql.read() as c:
            return self.kept.version(c, room, version_id)

    def latest_version(self, room: str) -> list[Row]:
        with self.sql.read() as c:
            return self.kept.latest(c, room)

    def quarantine(self, room: str, bad: list[tuple[Row, str]]) -> None:
        """Keep a copy of rows that failed to load. They stay where they are (a bad snapshot
        until the next compaction replaces it, an entry until its stream is trimmed), skipped
        by every load, which copies them again."""
        with self.sql.transaction() as c:
            self.kept.quarantine(c, room, bad, _now_ms())

    def chat_page(self, room: str, before: int | None, limit: int) -> list[ChatRow]:
        with self.sql.read() as c:
            return self.chat.page(c, room, before, limit)

    def archive_chat(self, room: str, lines: list[tuple[str, str]], keep_bytes: int) -> None:
        with self.sql.transaction() as c:
            self.chat.archive(c, room, lines, keep_bytes)

    def clear_chat(self, room: str) -> None:
        with self.sql.transaction() as c:
            self.chat.clear(c, room)

    def chat_usage(self) -> dict[str, int]:
        with self.sql.read() as c:
            return self.chat.usage(c)

    def trim_chat(self, room: str, keep_bytes: int) -> int:
        with self.sql.transaction() as c:
            return self.chat.trim(c, room, keep_bytes)

    # its history and its rooms' openings, for `common.disk`

    def usage(self) -> dict[str, int]:
        with self.sql.read() as c:
            return self.kept.usage(c)

    def trim(self, room: str, keep_bytes: int) -> int:
        with self.sql.transaction() as c:
            return self.kept.trim(c, room, keep_bytes)

    def forget(self, room: str) -> int:
        """Delete the room's snapshot, versions, quarantined rows, older chat lines and opening."""
        with self.sql.transaction() as c:
            row = c.row("SELECT length(data) FROM rooms WHERE room = ?", (room,))
            c.execute("DELETE FROM rooms WHERE room = ?", (room,))
            self.chat.clear(c, room)
            return self.kept.forget(c, room) + (int(row[0]) if row else 0)

    def reclaim(self) -> None:
        """PostgreSQL's autovacuum reclaims dead rows on its own."""

    def opened(self, rooms: Iterable[str], at_ms: int) -> None:
        with self.sql.transaction() as c:
            self.kept.opened(c, rooms, at_ms)

    def last_opened(self) -> dict[str, int]:
        with self.sql.transaction() as c:
            return self.kept.last_opened(c, "SELECT room FROM rooms", _now_ms())

    def close(self) -> None:
        self.pool.close()
