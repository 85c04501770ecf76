"""PostgreSQL set-up shared by the cluster's stores (rooms, run records, tokens): one pool, one schema.

Why a synchronous pool (psycopg 3 with psycopg_pool) and not the async one: the stores are
called from worker threads exactly like their SQLite counterparts (`asyncio.to_thread`), so each
store has ONE interface whatever the database; none of them sits on the per-frame hot path (that
is Redis), and a big snapshot's I/O then never runs on the event loop.
"""

from __future__ import annotations

import logging

from psycopg_pool import ConnectionPool

log = logging.getLogger("inhabit.postgres")

SCHEMA = "inhabit"
"""Our tables live in their own schema, so the database may be shared with other software."""


class DatabaseError(RuntimeError):
    """PostgreSQL cannot be used at start-up (unreachable, no rights): a start-up error."""


def open_pool(url: str, size: int, timeout: float = 5.0) -> ConnectionPool:
    """A pool of `size` connections; waits until one works (DatabaseError after `timeout`).

    Each connection is checked when handed out, so after a PostgreSQL restart the first
    caller gets a fresh connection instead of a broken one. Its search path is our schema, so
    the stores written once for both engines (`common.sql`) name their tables plainly."""
    pool = ConnectionPool(url, min_size=1, max_size=size, open=False, name="inhabit", timeout=timeout,
                          check=ConnectionPool.check_connection, kwargs={"options": f"-c search_path={SCHEMA}"})
    try:
        pool.open(wait=True, timeout=timeout)
    except Exception as exc:
        pool.close()
        raise DatabaseError(f"cannot reach PostgreSQL at {redact_url(url)}: {exc}") from exc
    return pool


def ensure_schema(pool: ConnectionPool, ddl: str) -> None:
    """Create our schema and the tables in `ddl` (CREATE ... IF NOT EXISTS statements).

    Nodes starting together would race on the catalog (`CREATE TABLE IF NOT EXISTS` is not
    atomic against a concurrent create): a transaction-scoped advisory lock takes turns."""
    with pool.connection() as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('inhabit.schema'))")
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        conn.execute(ddl)  # our own constant, several statements


def redact_url(url: str) -> str:
    """`url` without its password, for messages."""
    head, sep, tail = url.partition("@")
    if not sep or ":" not in head.split("//", 1)[-1]:
        return url
    scheme, _, creds = head.rpartition("//")
    return f"{scheme}//{creds.split(':', 1)[0]}:***@{tail}"
