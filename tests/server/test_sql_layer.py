"""The SQL layer itself (`common.sql`), on both engines: statements written once (`?`, a
literal `%`, upsert), a transaction that fails leaves nothing, every driver error is a
`SqlError`, and a migration step runs once."""

from __future__ import annotations

from pathlib import Path

import pytest
from psycopg_pool import ConnectionPool

from common.sql import Conn, PgSql, Sql, SqlError, SqliteSql


def engine(where: Path | ConnectionPool) -> Sql:
    return PgSql(where) if isinstance(where, ConnectionPool) else SqliteSql(Path(where) / "t.sqlite3", "test database")


def test_statements_transactions_and_errors_are_the_same_on_both(where: Path | ConnectionPool) -> None:
    sql = engine(where)
    sql.migrate("t", [sql.create("CREATE TABLE t (seq {serial}, k TEXT NOT NULL UNIQUE, v TEXT NOT NULL, b {blob})")])
    with sql.transaction() as c:
        c.executemany("INSERT INTO t (k, v, b) VALUES (?, ?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v",
                      [("a", "50%", b"\x00\x01"), ("b", "x", None), ("a", "60%", None)])
    with sql.read() as c:
        assert c.rows("SELECT k, v, b FROM t WHERE v LIKE '%\\%' ESCAPE '\\' ORDER BY seq") == [("a", "60%", b"\x00\x01")]
    with pytest.raises(ZeroDivisionError), sql.transaction() as c:
        c.execute("DELETE FROM t")
        raise ZeroDivisionError
    with pytest.raises(SqlError), sql.transaction() as c:
        c.execute("INSERT INTO t (k, v) VALUES (?, ?)", ("c", "y"))
        c.execute("INSERT INTO nowhere (k) VALUES (?)", ("d",))
    with sql.read() as c:
        assert c.rows("SELECT k FROM t ORDER BY seq") == [("a",), ("b",)]  # neither transaction left anything
        assert c.columns("t") == {"seq", "k", "v", "b"} and "t" in c.tables()
    sql.close()


def test_a_migration_step_runs_once_and_is_recorded(where: Path | ConnectionPool) -> None:
    ran: list[int] = []

    def step(n: int):
        def run(c: Conn) -> None:
            ran.append(n)
        return run
    sql = engine(where)
    sql.migrate("m", [step(1)])
    sql.migrate("m", [step(1), step(2)])
    sql.migrate("m", [step(1), step(2)])
    assert ran == [1, 2]
    with sql.read() as c:
        assert c.row("SELECT version FROM schema_versions WHERE store = 'm'") == (2,)
    sql.close()
