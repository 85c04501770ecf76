"""Older chat lines, kept in the store once the room's document let them go (`server.chat`),
written once over `common.sql` for both stores: the embedded `server.store.Store` (SQLite) and
the cluster's `server.cluster.snapshots.Snapshots` (PostgreSQL).

Why a table and not the document: a room's chat must not grow its document without end (a
document at its size limit takes no more edits), yet what was said stays readable over HTTP
(`GET /rooms/NAME/chat`). Each row is one line's JSON under a growing `seq` (the table's key);
a line's id is unique per room, so two nodes trimming the same lines store them once. Bounded
per room in bytes: past `keep_bytes` the oldest rows go.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from common.sql import Conn

DDL = """
CREATE TABLE IF NOT EXISTS chat (
    seq {serial},
    room TEXT NOT NULL,
    mid TEXT NOT NULL,
    data TEXT NOT NULL,
    bytes INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS chat_room_mid ON chat (room, mid);
CREATE INDEX IF NOT EXISTS chat_room_seq ON chat (room, seq)
"""

INSERT = "INSERT INTO chat (room, mid, data, bytes) VALUES (?, ?, ?, ?) ON CONFLICT (room, mid) DO NOTHING"

BOUND = """
DELETE FROM chat WHERE room = ? AND seq <= (
    SELECT MAX(seq) FROM (SELECT seq, SUM(bytes) OVER (ORDER BY seq DESC) AS newer FROM chat WHERE room = ?) t WHERE newer > ?)
"""
"""Delete the room's oldest rows until the newest ones fit in the byte budget."""

PAGE_LIMIT = 200
"""Most lines one `GET /rooms/NAME/chat` answers."""


@dataclass(frozen=True, slots=True)
class ChatRow:
    """One archived line: its place in the room's log and its JSON as the document held it."""

    seq: int
    data: str


class ChatStore(Protocol):
    """What `server.chat.ChatArchive` and `ChatHistory` ask of either store (synchronous: called off the loop)."""

    def chat_page(self, room: str, before: int | None, limit: int) -> list[ChatRow]: ...
    def archive_chat(self, room: str, lines: list[tuple[str, str]], keep_bytes: int) -> None: ...
    def clear_chat(self, room: str) -> None: ...
    def chat_usage(self) -> dict[str, int]: ...
    def trim_chat(self, room: str, keep_bytes: int) -> int: ...
    def reclaim(self) -> None: ...


class ChatHistory:
    """The kept chat lines as a `common.disk.History` ("chat"): the data budget trims a room's
    oldest lines with its other history, and `--room-ttl` forgets them with the room."""

    name = "chat"

    def __init__(self, store: ChatStore) -> None:
        self.store = store

    def usage(self) -> dict[str, int]:
        return self.store.chat_usage()

    def trim(self, room: str, keep_bytes: int) -> int:
        return self.store.trim_chat(room, keep_bytes)

    def forget(self, room: str) -> int:
        n = self.store.chat_usage().get(room, 0)
        self.store.clear_chat(room)
        return n

    def reclaim(self) -> None:
        self.store.reclaim()


class ChatLog:
    """The `chat` table, on a connection the caller holds (inside its transaction when writing)."""

    def archive(self, c: Conn, room: str, lines: list[tuple[str, str]], keep_bytes: int) -> None:
        """Append `lines` ((message id, JSON), oldest first), then keep the newest `keep_bytes`."""
        c.executemany(INSERT, [(room, mid, data, len(data.encode())) for mid, data in lines])
        c.execute(BOUND, (room, room, keep_bytes))

    def page(self, c: Conn, room: str, before: int | None, limit: int) -> list[ChatRow]:
        """Up to `limit` lines older than `before` (None: the newest), oldest first."""
        limit = max(1, min(limit, PAGE_LIMIT))
        if before is None:
            rows = c.rows("SELECT seq, data FROM chat WHERE room = ? ORDER BY seq DESC LIMIT ?", (room, limit))
        else:
            rows = c.rows("SELECT seq, data FROM chat WHERE room = ? AND seq < ? ORDER BY seq DESC LIMIT ?", (room, before, limit))
        return [ChatRow(int(seq), str(data)) for seq, data in reversed(rows)]

    def clear(self, c: Conn, room: str) -> None:
        c.execute("DELETE FROM chat WHERE room = ?", (room,))

    def usage(self, c: Conn) -> dict[str, int]:
        """Bytes of kept lines per room."""
        return {room: int(n) for room, n in c.rows("SELECT room, SUM(bytes) FROM chat GROUP BY room") if n}

    def trim(self, c: Conn, room: str, keep_bytes: int) -> int:
        """Keep the room's newest `keep_bytes` of lines; the bytes dropped."""
        before = c.row("SELECT COALESCE(SUM(bytes), 0) FROM chat WHERE room = ?", (room,))
        c.execute(BOUND, (room, room, keep_bytes))
        after = c.row("SELECT COALESCE(SUM(bytes), 0) FROM chat WHERE room = ?", (room,))
        return int(before[0] if before else 0) - int(after[0] if after else 0)
