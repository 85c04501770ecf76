"""Durable agent run records in cluster mode: one PostgreSQL table every node reads and writes.

The same records and the same interface as `agent.runs.records.RunDB` (SQLite, one process), so
`RunStore` works on either: `GET /rooms/NAME/runs[/ID]` answers on every node, whichever node
ran the prompt. `shared = True`: records are read through (another node may have written them
since), and a run another node is running is never taken for one interrupted by a restart.
"""

from __future__ import annotations

from psycopg_pool import ConnectionPool

from common.postgres import SCHEMA, ensure_schema

DDL = f"""
CREATE TABLE IF NOT EXISTS {SCHEMA}.runs (
    seq bigserial PRIMARY KEY,
    id text NOT NULL UNIQUE,
    room text NOT NULL,
    status text NOT NULL,
    data text NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_room ON {SCHEMA}.runs (room, seq);
"""


class PgRunDB:
    """Synchronous, thread-safe (a pool) access to the run records in PostgreSQL."""

    shared = True

    def __init__(self, pool: ConnectionPool, per_room: int = 200) -> None:
        self.pool = pool
        self.per_room = per_room
        ensure_schema(pool, DDL)

    def load(self, room: str) -> list[str]:
        with self.pool.connection() as conn:
            rows = conn.execute(f"SELECT data FROM {SCHEMA}.runs WHERE room = %s ORDER BY seq DESC LIMIT %s", (room, self.per_room)).fetchall()
        return [r[0] for r in reversed(rows)]

    def load_one(self, room: str, run_id: str) -> str | None:
        with self.pool.connection() as conn:
            row = conn.execute(f"SELECT data FROM {SCHEMA}.runs WHERE room = %s AND id = %s", (room, run_id)).fetchone()
        return row[0] if row else None

    def unfinished(self, room: str) -> list[str]:
        """The room's queued and running records (a new holder of the room's agent takes them over)."""
        with self.pool.connection() as conn:
            rows = conn.execute(f"SELECT data FROM {SCHEMA}.runs WHERE room = %s AND status IN ('queued', 'running') ORDER BY seq",
                                (room,)).fetchall()
        return [r[0] for r in rows]

    def write(self, upserts: list[tuple[str, str, str, str]], deletes: list[str]) -> None:
        rooms = {u[1] for u in upserts}
        with self.pool.connection() as conn, conn.transaction():
            with conn.cursor() as cur:
                cur.executemany(f"INSERT INTO {SCHEMA}.runs (id, room, status, data) VALUES (%s, %s, %s, %s) "
                                "ON CONFLICT (id) DO UPDATE SET status = excluded.status, data = excluded.data", upserts)
                if deletes:
                    cur.execute(f"DELETE FROM {SCHEMA}.runs WHERE id = ANY(%s)", (deletes,))
            for room in rooms:
                conn.execute(f"DELETE FROM {SCHEMA}.runs WHERE room = %s AND status IN ('done', 'failed') AND seq NOT IN "
                             f"(SELECT seq FROM {SCHEMA}.runs WHERE room = %s ORDER BY seq DESC LIMIT %s)", (room, room, self.per_room))

    def close(self) -> None:
        """The pool is the node's, closed by the server."""
