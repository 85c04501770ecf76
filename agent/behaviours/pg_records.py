"""Durable behaviours in cluster mode: the tables of `agent.behaviours.records` in PostgreSQL, shared
by every node.

The same rows and the same interface as `BehaviourDB` (SQLite, one process), so
`BehaviourStore` works on either. `shared = True`: a node keeps in memory only the rooms whose
agent lease it holds (their behaviours fire there, and only there), loads a room when it takes
the lease and reads the other rooms through, so any node answers the behaviour routes.
`scheduled_rooms` tells every node which rooms need a holder even with nobody in them.
"""

from __future__ import annotations

from psycopg_pool import ConnectionPool

from agent.behaviours.records import Batch
from common.postgres import SCHEMA, ensure_schema

DDL = f"""
CREATE TABLE IF NOT EXISTS {SCHEMA}.behaviours (
    seq bigserial,
    id text PRIMARY KEY,
    room text NOT NULL,
    data text NOT NULL
);
CREATE INDEX IF NOT EXISTS behaviours_room ON {SCHEMA}.behaviours (room, seq);
CREATE TABLE IF NOT EXISTS {SCHEMA}.behaviour_versions (
    behaviour text NOT NULL,
    version integer NOT NULL,
    code text NOT NULL,
    PRIMARY KEY (behaviour, version)
);
CREATE TABLE IF NOT EXISTS {SCHEMA}.behaviour_firings (
    seq bigserial PRIMARY KEY,
    id text NOT NULL UNIQUE,
    behaviour text NOT NULL,
    data text NOT NULL
);
CREATE INDEX IF NOT EXISTS behaviour_firings_behaviour ON {SCHEMA}.behaviour_firings (behaviour, seq);
CREATE TABLE IF NOT EXISTS {SCHEMA}.behaviour_seen (
    room text PRIMARY KEY,
    ids text NOT NULL
);
"""

B, V, F, S = (f"{SCHEMA}.{t}" for t in ("behaviours", "behaviour_versions", "behaviour_firings", "behaviour_seen"))


class PgBehaviourDB:
    """Synchronous, thread-safe (a pool) access to the behaviours in PostgreSQL."""

    shared = True

    def __init__(self, pool: ConnectionPool, firings_kept: int = 50) -> None:
        self.pool = pool
        self.kept = firings_kept
        ensure_schema(pool, DDL)

    def _rows(self, sql: str, args: tuple[object, ...]) -> list[tuple[str, ...]]:
        with self.pool.connection() as conn:
            return conn.execute(sql, args).fetchall()  # type: ignore[arg-type]  # our own constants

    def load(self) -> list[str]:
        return [r[0] for r in self._rows(f"SELECT data FROM {B} ORDER BY seq", ())]

    def load_room(self, room: str) -> list[str]:
        return [r[0] for r in self._rows(f"SELECT data FROM {B} WHERE room = %s ORDER BY seq", (room,))]

    def scheduled_rooms(self) -> list[str]:
        # lax JSON path: `on` entries that are strings have no `every` and match nothing
        return [r[0] for r in self._rows(f"SELECT DISTINCT room FROM {B} WHERE data::jsonb->>'status' = 'active' "
                                         "AND jsonb_path_exists(data::jsonb, '$.on[*].every')", ())]

    def firings(self, behaviour: str, limit: int) -> list[str]:
        return [r[0] for r in self._rows(f"SELECT data FROM {F} WHERE behaviour = %s ORDER BY seq DESC LIMIT %s", (behaviour, limit))]

    def firing(self, firing_id: str) -> str | None:
        rows = self._rows(f"SELECT data FROM {F} WHERE id = %s", (firing_id,))
        return rows[0][0] if rows else None

    def seen(self, room: str) -> str | None:
        rows = self._rows(f"SELECT ids FROM {S} WHERE room = %s", (room,))
        return rows[0][0] if rows else None

    def code(self, behaviour: str, version: int) -> str | None:
        rows = self._rows(f"SELECT code FROM {V} WHERE behaviour = %s AND version = %s", (behaviour, version))
        return rows[0][0] if rows else None

    def write(self, batch: Batch) -> None:
        """As `BehaviourDB.write`: one transaction, then the same trimming."""
        touched = {b for b, _ in batch.firings.values()} | set(batch.behaviours)
        with self.pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            cur.executemany(f"INSERT INTO {B} (id, room, data) VALUES (%s, %s, %s) ON CONFLICT (id) DO UPDATE SET data = excluded.data",
                            [(i, room, data) for i, (room, data) in batch.behaviours.items()])
            cur.executemany(f"INSERT INTO {V} (behaviour, version, code) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING", batch.versions)
            cur.executemany(f"INSERT INTO {F} (id, behaviour, data) VALUES (%s, %s, %s) ON CONFLICT (id) DO UPDATE SET data = excluded.data",
                            [(i, b, data) for i, (b, data) in batch.firings.items()])
            cur.executemany(f"INSERT INTO {S} (room, ids) VALUES (%s, %s) ON CONFLICT (room) DO UPDATE SET ids = excluded.ids",
                            [(room, ids) for room, ids in batch.seen.items() if ids is not None])
            cur.executemany(f"DELETE FROM {S} WHERE room = %s", [(room,) for room, ids in batch.seen.items() if ids is None])
            if batch.removed:
                removed = list(batch.removed)
                for table, column in ((B, "id"), (V, "behaviour"), (F, "behaviour")):
                    cur.execute(f"DELETE FROM {table} WHERE {column} = ANY(%s)", (removed,))  # type: ignore[arg-type]
            for bid in touched - batch.removed:
                cur.execute(f"DELETE FROM {F} WHERE behaviour = %s AND seq NOT IN "
                            f"(SELECT seq FROM {F} WHERE behaviour = %s ORDER BY seq DESC LIMIT %s)", (bid, bid, self.kept))
                cur.execute(f"DELETE FROM {V} WHERE behaviour = %s AND version < COALESCE("
                            f"(SELECT MIN((data::jsonb->>'version')::int) FROM {F} WHERE behaviour = %s), "
                            f"(SELECT MAX(version) FROM {V} WHERE behaviour = %s))", (bid, bid, bid))

    def close(self) -> None:
        """The pool is the node's, closed by the server."""
