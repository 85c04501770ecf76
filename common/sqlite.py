"""SQLite set-up shared by the room store and the run records: one way to open, one way to commit.

Why our own few lines and not an ORM: both stores are a handful of statements on hot-ish
paths, written from one worker thread each; what they need is the same connection settings
and the same all-or-nothing transaction, not a query layer.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path


def open_sqlite(path: Path, schema: str) -> sqlite3.Connection:
    """A WAL-mode connection in autocommit mode (`transaction` opens transactions), usable
    from any thread under the caller's lock. synchronous=NORMAL: a committed row survives a
    process crash (kill -9), which is the durability promise; an OS crash may lose the last
    commits."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(schema)
    return db


@contextlib.contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """`with transaction(db):` BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any exception.

    A failed COMMIT counts too; and after SQLITE_FULL, SQLite has already rolled back by itself,
    so a second ROLLBACK (which would replace the real error) is skipped."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
