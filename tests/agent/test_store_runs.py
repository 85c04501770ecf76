"""The run records store (`agent.runs.records.RunRecords`), one suite on both engines: what is
written reads back in order, each room is trimmed to its newest records (finished ones go
first), the unfinished ones are found, a failed read costs a file's history but raises when
shared; and run records written by the code before `common.sql` open with every record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from psycopg_pool import ConnectionPool

from agent.runs.records import RunRecords
from common.sql import SqlError

from support.sql_engines import raw


def rec(run_id: str, status: str, room: str = "r") -> tuple[str, str, str, str]:
    return (run_id, room, status, json.dumps({"id": run_id, "room": room, "status": status}))


def ids(rows: list[str]) -> list[str]:
    return [json.loads(r)["id"] for r in rows]


def test_records_read_back_trimmed_per_room_with_the_unfinished(where: Path | ConnectionPool) -> None:
    db = RunRecords.open(where, per_room=3)
    assert db.shared is isinstance(where, ConnectionPool)
    db.write([rec(i, "done") for i in "abcde"] + [rec("q", "queued"), rec("x", "running"), rec("s1", "done", "s")], [])
    assert ids(db.load("r")) == ["e", "q", "x"]  # a-d: finished, older than the newest 3
    assert ids(db.unfinished("r")) == ["q", "x"] and db.unfinished("s") == []
    db.write([rec("q", "done")], [])  # an update keeps its place
    assert ids(db.load("r")) == ["e", "q", "x"] and ids(db.unfinished("r")) == ["x"]
    assert db.load_one("r", "e") == rec("e", "done")[3] and db.load_one("s", "e") is None and db.load_one("r", "nope") is None
    db.write([], ["e"])
    assert ids(db.load("r")) == ["q", "x"] and ids(db.load("s")) == ["s1"] and db.load("empty") == []
    db.close()
    again = RunRecords.open(where, per_room=3)  # reopened: the same records, the schema not redone
    assert ids(again.load("r")) == ["q", "x"] and ids(again.unfinished("r")) == ["x"]
    again.close()


def test_running_records_are_never_trimmed(where: Path | ConnectionPool) -> None:
    db = RunRecords.open(where, per_room=2)
    db.write([rec(i, "running") for i in "abc"] + [rec("d", "failed")], [])
    assert ids(db.load("r")) == ["c", "d"] and ids(db.unfinished("r")) == ["a", "b", "c"]
    db.close()


def test_a_failed_read_costs_a_files_history_but_raises_when_shared(where: Path | ConnectionPool) -> None:
    db = RunRecords.open(where)
    db.write([rec("a", "done")], [])
    with db.sql.transaction() as c:  # as if the table could no longer be read
        c.execute("DROP TABLE runs")
    if db.shared:
        with pytest.raises(SqlError):
            db.load("r")
    else:
        assert db.load("r") == []
    db.close()


async def test_store_is_bounded_on_disk_and_marks_interrupted_runs(tmp_path):
    from agent.runs.store import INTERRUPTED, AgentRun, RunStore

    store = RunStore(per_room=3, db=RunRecords.open(tmp_path, per_room=3))
    runs = [store.add(AgentRun(room="r", prompt=str(i), status="done")) for i in range(5)]
    live = store.add(AgentRun(room="other", prompt="x"))
    live.status = "running"
    runs[4].undone = True
    store.save(live)
    store.save(runs[4])
    store.close()

    back = RunStore(per_room=3, db=RunRecords.open(tmp_path, per_room=3))
    await back.interrupt_leftovers()  # what the one process that owns the records does at start-up
    summaries, older = await back.page("r", 50)
    assert [json.loads(s)["prompt"] for s in summaries] == ["2", "3", "4"] and older is None
    assert (await back.fetch("r", runs[4].id)).undone is True and await back.fetch("r", runs[0].id) is None
    lost = await back.fetch("other", live.id)
    assert lost.status == "failed" and INTERRUPTED in lost.errors
    assert await back.page("empty", 50) == ([], None)
    back.close()


# ---- records written before `common.sql` (the exact DDL and statements of that code) ----

SQLITE_DDL = """
CREATE TABLE IF NOT EXISTS runs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    room TEXT NOT NULL,
    status TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_room ON runs (room, seq);
"""

PG_DDL = """
CREATE SCHEMA IF NOT EXISTS inhabit;
CREATE TABLE IF NOT EXISTS inhabit.runs (
    seq bigserial PRIMARY KEY,
    id text NOT NULL UNIQUE,
    room text NOT NULL,
    status text NOT NULL,
    data text NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_room ON inhabit.runs (room, seq);
"""

UPSERT = {False: "INSERT INTO runs (id, room, status, data) VALUES (?, ?, ?, ?) "
                 "ON CONFLICT(id) DO UPDATE SET status = excluded.status, data = excluded.data",
          True: "INSERT INTO inhabit.runs (id, room, status, data) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET status = excluded.status, data = excluded.data"}


def test_records_written_before_open_with_every_record(where: Path | ConnectionPool) -> None:
    pg = isinstance(where, ConnectionPool)
    old = [rec("a", "done"), rec("b", "failed"), rec("c", "queued"), rec("d", "running"), rec("e", "done", "s")]
    raw(where, "runs.sqlite3", PG_DDL if pg else SQLITE_DDL, [(UPSERT[pg], old)])
    db = RunRecords.open(where)
    assert ids(db.load("r")) == ["a", "b", "c", "d"] and ids(db.load("s")) == ["e"]
    assert ids(db.unfinished("r")) == ["c", "d"]
    assert [db.load_one(room, i) for i, room, _, _ in old] == [data for _, _, _, data in old]
    db.write([rec("f", "done")], [])  # and it goes on from there
    assert ids(db.load("r")) == ["a", "b", "c", "d", "f"]
    with db.sql.read() as c:
        assert c.row("SELECT version FROM schema_versions WHERE store = 'runs'") == (2,)  # 2: the summary columns
    db.close()


def test_a_file_the_migration_cannot_read_is_set_aside(tmp_path: Path) -> None:
    raw(tmp_path, "runs.sqlite3", "CREATE TABLE runs (x TEXT); INSERT INTO runs VALUES ('kept for forensics');", [])
    db = RunRecords.open(tmp_path)  # its index cannot be made: as damaged as a bad page
    db.write([rec("a", "done")], [])
    assert ids(db.load("r")) == ["a"]
    db.close()
    assert [p.name.split(".damaged-")[0] for p in tmp_path.glob("runs.sqlite3.damaged-*")] == ["runs.sqlite3"]
