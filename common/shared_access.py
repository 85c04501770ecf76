"""Tokens in cluster mode: the secret and the revocation list every node shares, in PostgreSQL.

Why PostgreSQL: a token minted by one node must work on every other one, and a revocation must
reach all of them; PostgreSQL is the durable state the nodes already share. The secret is
`INHABIT_SECRET` when set (the operator's own), else one row created by whichever node (or
`inhabit token --database`) comes first. Each process re-reads the revoked ids every half
second on a thread of its own, so `verify` stays a set lookup and never waits on the database:
a revocation takes effect on every node within a second, as on one node, and its open
websockets and MCP sessions and its behaviours are cut then (`common.lapses`).
"""

from __future__ import annotations

import logging
import secrets
import threading

from psycopg_pool import ConnectionPool

from .access import Access
from .postgres import SCHEMA, ensure_schema

log = logging.getLogger("inhabit.access")

DDL = f"""
CREATE TABLE IF NOT EXISTS {SCHEMA}.secret (id int PRIMARY KEY CHECK (id = 1), secret text NOT NULL);
CREATE TABLE IF NOT EXISTS {SCHEMA}.revoked (id text PRIMARY KEY, at timestamptz NOT NULL DEFAULT now(), note text NOT NULL DEFAULT '');
"""
REFRESH_S = 0.5


def shared_secret(pool: ConnectionPool) -> str:
    """The cluster's token secret, created on first use (concurrent first uses agree)."""
    with pool.connection() as conn:
        conn.execute(f"INSERT INTO {SCHEMA}.secret (id, secret) VALUES (1, %s) ON CONFLICT (id) DO NOTHING", (secrets.token_hex(32),))
        row = conn.execute(f"SELECT secret FROM {SCHEMA}.secret WHERE id = 1").fetchone()
    assert row is not None
    return str(row[0])


class SharedRevocations:
    """Revoked token ids in a PostgreSQL table; `Access.revoked` in cluster mode."""

    def __init__(self, pool: ConnectionPool, watch: bool = True) -> None:
        self.pool = pool
        self._ids: frozenset[str] = frozenset()
        self._stop = threading.Event()
        self.refresh()
        if watch:  # the CLI adds one and exits; servers keep looking
            threading.Thread(target=self._watch, name="inhabit-revoked", daemon=True).start()

    def __contains__(self, token_id: object) -> bool:
        return token_id in self._ids

    def ids(self) -> frozenset[str]:
        return self._ids

    def add(self, token_id: str, note: str = "") -> None:
        with self.pool.connection() as conn:
            conn.execute(f"INSERT INTO {SCHEMA}.revoked (id, note) VALUES (%s, %s) ON CONFLICT (id) DO NOTHING", (token_id, note))
        self._ids |= {token_id}

    def refresh(self) -> None:
        with self.pool.connection(timeout=REFRESH_S * 4) as conn:
            ids = frozenset(r[0] for r in conn.execute(f"SELECT id FROM {SCHEMA}.revoked"))
        if ids != self._ids:  # the same object while nothing changed: `ids()` watchers compare by identity
            self._ids = ids

    def _watch(self) -> None:
        failing = False
        while not self._stop.wait(REFRESH_S):
            try:
                self.refresh()
            except Exception as exc:  # PostgreSQL away: keep the list we have, say so once
                if not failing:
                    log.warning("cannot read revoked tokens from PostgreSQL (%s); using the last list read", exc)
                failing = True
            else:
                failing = False

    def close(self) -> None:
        self._stop.set()


def shared_access(pool: ConnectionPool, secret: str | None = None, watch: bool = True) -> Access:
    """The token authority every node of a cluster shares."""
    ensure_schema(pool, DDL)
    return Access((secret or shared_secret(pool)).encode(), SharedRevocations(pool, watch))
