"""The two engines every SQL store runs on (`common.sql`), as one parametrized fixture: a store
test that takes `where` runs once on SQLite (a data folder) and once on PostgreSQL (a pool on
a fresh database of the session's server), so both engines keep one behaviour."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from psycopg_pool import ConnectionPool

from common.postgres import open_pool


@pytest.fixture(params=["sqlite", "postgres"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path | ConnectionPool]:
    """A data folder (SQLite) or a pool (PostgreSQL): what `RunRecords.open` & co. take."""
    if request.param == "sqlite":
        yield tmp_path
        return
    pool = open_pool(request.getfixturevalue("postgres").create_database(), 4)
    try:
        yield pool
    finally:
        pool.close()


def raw(where: Path | ConnectionPool, file: str, script: str, rows: list[tuple[str, list[tuple[Any, ...]]]]) -> None:
    """Write `script` (DDL, `?` placeholders in `rows`' statements) and `rows` straight to the
    engine, as code before `common.sql` did: into `<where>/<file>` or into PostgreSQL."""
    if isinstance(where, ConnectionPool):
        with where.connection() as conn, conn.transaction():
            conn.execute(script)  # type: ignore[arg-type]
            for statement, values in rows:
                with conn.cursor() as cur:
                    cur.executemany(statement.replace("?", "%s"), values)  # type: ignore[arg-type]
        return
    import sqlite3

    db = sqlite3.connect(Path(where) / file)
    db.executescript(script)
    for statement, values in rows:
        db.executemany(statement, values)
    db.commit()
    db.close()
