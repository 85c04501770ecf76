"""One thin wrapper over the two SQL engines, so each store (run records, behaviours, kept
versions) is written once and runs on either: SQLite (embedded mode, one file per store, via
`common.sqlite`'s set-up) or PostgreSQL (cluster mode, the node's pool from `common.postgres`).

Why our own few dozen lines and not an ORM or a query builder: the stores are a handful of
plain statements each; what differs between the engines is small and mechanical, and is all
here (after tldraw's `TLSyncSqliteWrapper` and Cloudflare agents' Postgres adapter):

- placeholders: statements are written with `?`; for psycopg they become `%s` (cached);
- the schema: PostgreSQL connections from `common.postgres.open_pool` look names up in our
  schema (`inhabit`) first, so statements name tables plainly in both engines;
- column types for DDL: `{serial}` (a growing integer key) and `{blob}` (bytes);
- errors: every driver error surfaces as `SqlError`, whatever the engine;
- transactions: `with sql.transaction() as c:` commits, or rolls back on any exception;
- migrations: `migrate(store, steps)` brings a store's tables to its newest schema version
  inside one transaction, recorded in `schema_versions`.

Upsert (`INSERT ... ON CONFLICT ... DO UPDATE/NOTHING`) is written the same in both engines.
Synchronous, thread-safe: stores call it from worker threads.
"""

from __future__ import annotations

import abc
import contextlib
import functools
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import psycopg
from psycopg_pool import ConnectionPool

from common.postgres import SCHEMA
from common.sqlite import open_or_set_aside, set_aside, transaction

Args = Sequence[Any]
Row = tuple[Any, ...]


class SqlError(Exception):
    """A statement failed (a damaged file, a full disk, PostgreSQL away): the one error type of
    every store, whatever the engine; the driver's error is its `__cause__`."""

    @classmethod
    def of(cls, exc: Exception) -> SqlError:
        return cls(f"{type(exc).__name__}: {exc}")


class Conn(Protocol):
    """One connection, inside `Sql.read()` or `Sql.transaction()`; statements use `?`."""

    def execute(self, sql: str, args: Args = ()) -> None: ...

    def executemany(self, sql: str, rows: Iterable[Args]) -> None: ...

    def rows(self, sql: str, args: Args = ()) -> list[Row]: ...

    def row(self, sql: str, args: Args = ()) -> Row | None: ...

    def tables(self) -> set[str]:
        """Our tables that exist (for migrations)."""
        ...

    def columns(self, table: str) -> set[str]: ...


Step = Callable[[Conn], None]
"""One migration step: from the version before it to the next, on the opening transaction."""

VERSIONS_DDL = "CREATE TABLE IF NOT EXISTS schema_versions (store TEXT PRIMARY KEY, version INTEGER NOT NULL)"


class Sql(abc.ABC):
    """Where a store's tables live; `SqliteSql` or `PgSql`."""

    shared: bool
    """Other processes write it too (PostgreSQL in cluster mode)."""
    types: dict[str, str]
    """DDL words that differ: `serial` (an integer key that grows), `blob`."""

    @abc.abstractmethod
    def read(self, timeout: float | None = None) -> contextlib.AbstractContextManager[Conn]:
        """A connection for reads (no transaction); PostgreSQL: waiting at most `timeout` for one."""

    @abc.abstractmethod
    def transaction(self) -> contextlib.AbstractContextManager[Conn]:
        """A connection in a transaction: committed at the end of the block, rolled back on any exception."""

    def ddl(self, text: str) -> str:
        """`text` with `{serial}` and `{blob}` in this engine's words."""
        return text.format(**self.types)

    def create(self, ddl: str) -> Step:
        """A migration step that runs `ddl` (statements separated by `;`) in this engine's words."""
        statements = [s for s in self.ddl(ddl).split(";") if s.strip()]

        def step(c: Conn) -> None:
            for statement in statements:
                c.execute(statement)
        return step

    def migrate(self, store: str, steps: Sequence[Step]) -> None:
        """Bring `store`'s tables to version `len(steps)`, in one transaction: the steps after
        the recorded version run in order, then the new version is recorded."""
        with self._migrating() as c:
            c.execute(VERSIONS_DDL)
            got = c.row("SELECT version FROM schema_versions WHERE store = ?", (store,))
            done = got[0] if got else 0
            for step in steps[done:]:
                step(c)
            if done != len(steps):
                c.execute("INSERT INTO schema_versions (store, version) VALUES (?, ?) "
                          "ON CONFLICT (store) DO UPDATE SET version = excluded.version", (store, len(steps)))

    def _migrating(self) -> contextlib.AbstractContextManager[Conn]:
        return self.transaction()

    def reclaim(self) -> None:  # noqa: B027  # PostgreSQL's autovacuum reclaims dead rows on its own
        """Hand pages freed by deletes back to the file system, where the engine needs telling."""

    def close(self) -> None:  # noqa: B027  # nothing to do for a pool: it is its node's, closed by the server
        """Let the database go."""


# ---- SQLite ---------------------------------------------------------------------------------


class SqliteConn:
    """`Conn` over a `sqlite3.Connection` (the caller holds the lock)."""

    __slots__ = ("db",)

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def execute(self, sql: str, args: Args = ()) -> None:
        try:
            self.db.execute(sql, args)
        except sqlite3.Error as exc:
            raise SqlError.of(exc) from exc

    def executemany(self, sql: str, rows: Iterable[Args]) -> None:
        try:
            self.db.executemany(sql, rows)
        except sqlite3.Error as exc:
            raise SqlError.of(exc) from exc

    def rows(self, sql: str, args: Args = ()) -> list[Row]:
        try:
            return self.db.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise SqlError.of(exc) from exc

    def row(self, sql: str, args: Args = ()) -> Row | None:
        try:
            row: Row | None = self.db.execute(sql, args).fetchone()
        except sqlite3.Error as exc:
            raise SqlError.of(exc) from exc
        return row

    def tables(self) -> set[str]:
        return {r[0] for r in self.rows("SELECT name FROM sqlite_master WHERE type = 'table'")}

    def columns(self, table: str) -> set[str]:
        return {r[1] for r in self.rows(f"PRAGMA table_info({table})")}


class SqliteSql(Sql):
    """A SQLite file of its own (WAL, `common.sqlite`), one connection under a lock. A damaged
    file is set aside and a fresh one started (`open_or_set_aside`): its loss costs history."""

    shared = False
    types = {"serial": "INTEGER PRIMARY KEY AUTOINCREMENT", "blob": "BLOB"}

    def __init__(self, path: Path, what: str) -> None:
        self.path = path
        self.what = what
        self._lock = threading.Lock()
        self._db = open_or_set_aside(path, "", what)
        self._conn = SqliteConn(self._db)

    def migrate(self, store: str, steps: Sequence[Step]) -> None:
        """As `Sql.migrate`; a file whose damage shows only now is set aside too, and a fresh one migrated."""
        try:
            super().migrate(store, steps)
        except SqlError as exc:
            with self._lock:
                self._db.close()
                set_aside(self.path, self.what, str(exc))
                self._db = open_or_set_aside(self.path, "", self.what)
                self._conn = SqliteConn(self._db)
            super().migrate(store, steps)

    @contextlib.contextmanager
    def read(self, timeout: float | None = None) -> Iterator[Conn]:
        with self._lock:
            yield self._conn

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Conn]:
        with self._lock:
            try:
                with transaction(self._db):
                    yield self._conn
            except sqlite3.Error as exc:
                raise SqlError.of(exc) from exc

    def reclaim(self, pages: int = 25_600) -> None:
        """Up to `pages` free pages handed back (a file made with auto_vacuum = INCREMENTAL,
        `common.sqlite`; an older one keeps them for reuse), then the WAL copied in and
        truncated, so the files on disk are what they hold."""
        with self._lock:
            try:
                self._db.executescript(f"PRAGMA incremental_vacuum({int(pages)});")  # stepped to the end (`execute` frees one page)
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            except sqlite3.Error as exc:
                raise SqlError.of(exc) from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()


# ---- PostgreSQL -----------------------------------------------------------------------------


@functools.lru_cache(maxsize=512)
def to_pyformat(sql: str) -> str:
    """`?` placeholders as psycopg's `%s` (a literal `%` doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


class PgConn:
    """`Conn` over a psycopg connection taken from the pool."""

    __slots__ = ("conn",)

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def execute(self, sql: str, args: Args = ()) -> None:
        self.conn.execute(to_pyformat(sql), args)

    def executemany(self, sql: str, rows: Iterable[Args]) -> None:
        with self.conn.cursor() as cur:
            cur.executemany(to_pyformat(sql), rows)

    def rows(self, sql: str, args: Args = ()) -> list[Row]:
        return self.conn.execute(to_pyformat(sql), args).fetchall()

    def row(self, sql: str, args: Args = ()) -> Row | None:
        return self.conn.execute(to_pyformat(sql), args).fetchone()

    def tables(self) -> set[str]:
        return {r[0] for r in self.rows("SELECT table_name FROM information_schema.tables WHERE table_schema = ?", (SCHEMA,))}

    def columns(self, table: str) -> set[str]:
        return {r[0] for r in self.rows("SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ?",
                                        (SCHEMA, table))}


class PgSql(Sql):
    """Our schema in a PostgreSQL database every node shares; connections from the node's pool
    (`common.postgres.open_pool`, which puts our schema first on the search path)."""

    shared = True
    types = {"serial": "bigserial PRIMARY KEY", "blob": "bytea"}

    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool

    @contextlib.contextmanager
    def read(self, timeout: float | None = None) -> Iterator[Conn]:
        try:
            with self.pool.connection(timeout=timeout) as conn:
                yield PgConn(conn)
        except psycopg.Error as exc:
            raise SqlError.of(exc) from exc

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Conn]:
        try:
            with self.pool.connection() as conn, conn.transaction():
                yield PgConn(conn)
        except psycopg.Error as exc:
            raise SqlError.of(exc) from exc

    @contextlib.contextmanager
    def _migrating(self) -> Iterator[Conn]:
        """Nodes starting together take turns (the advisory lock `ensure_schema` takes too)."""
        with self.transaction() as c:
            c.execute("SELECT pg_advisory_xact_lock(hashtext('inhabit.schema'))")
            c.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
            yield c
