"""SQLite set-up shared by the room store, the run records and the behaviours: one way to open, one way to commit.

Why our own few lines and not an ORM: both stores are a handful of statements on hot-ish
paths, written from one worker thread each; what they need is the same connection settings
and the same all-or-nothing transaction, not a query layer.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger("inhabit.sqlite")


def open_sqlite(path: Path, schema: str) -> sqlite3.Connection:
    """A WAL-mode connection in autocommit mode (`transaction` opens transactions), usable
    from any thread under the caller's lock. synchronous=NORMAL: a committed row survives a
    process crash (kill -9), which is the durability promise; an OS crash may lose the last
    commits. A new file is made with auto_vacuum = INCREMENTAL, so pages freed by trimming its
    history can be handed back to the file system (`common.disk`); an older file ignores it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA auto_vacuum=INCREMENTAL")  # takes effect only before the first table
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


def open_or_set_aside(path: Path, schema: str, what: str) -> sqlite3.Connection:
    """`open_sqlite`, for a database whose loss costs history, never drawings (run records,
    behaviours): a damaged file is moved aside (`<name>.damaged-<time>`, kept for forensics)
    with a log line, and a fresh one is started, so it never stops the server."""
    try:
        db = open_sqlite(path, schema)
        if db.execute("PRAGMA quick_check").fetchone()[0] == "ok":
            return db
        db.close()
        problem = "quick_check failed"
    except sqlite3.DatabaseError as e:
        problem = str(e)
    set_aside(path, what, problem)
    return open_sqlite(path, schema)


def set_aside(path: Path, what: str, problem: str) -> None:
    """Move the damaged database at `path` (and its WAL) to `<name>.damaged-<time>`, never
    over an earlier one, with a log line saying why."""
    aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
    n = 1
    while aside.exists():  # never overwrite an earlier damaged copy
        n += 1
        aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}-{n}")
    for suffix in ("", "-wal", "-shm"):
        part = Path(str(path) + suffix)
        if part.exists():
            part.rename(str(aside) + suffix)
    log.error("%s %s is damaged (%s): moved it to %s and started a fresh one", what, path, problem, aside)
