"""The behaviours store (`agent.behaviours.records.BehaviourRecords`), one suite on both
engines: behaviours, their code versions, firings and the strokes seen read back; firings and
versions are trimmed; scheduled rooms are found from columns; removing a behaviour takes its
rows with it; behaviours written by the code before `common.sql` open with every record. Then
`BehaviourStore` over each engine: reopened from a file, and shared by two nodes."""

from __future__ import annotations

import json
from pathlib import Path

from psycopg_pool import ConnectionPool

from agent.behaviours.model import Behaviour, FiredEvent, Firing
from agent.behaviours.records import Batch, BehaviourRecords
from agent.behaviours.store import BehaviourStore
from agent.contract.events import Installer, every_of
from common.postgres import open_pool

from support.sql_engines import raw

ME = Installer(id="tok123456789", label="editor tok123")


def behaviour(room: str, name: str, on: list, status: str = "active", version: int = 1) -> Behaviour:
    return Behaviour(room=room, name=name, on=on, code=str(version), installer=ME, version=version, status=status, state={"n": name})


def firing(b: Behaviour, i: int, version: int | None = None) -> Firing:
    return Firing(id=f"{b.id}.{i}", behaviour=b.id, room=b.room, version=version or b.version, event=FiredEvent(type="stroke", t=i),
                  state_before={}, seed=0, clock_ms=i, ok=True)


def batch_of(*bs: Behaviour) -> Batch:
    return Batch(behaviours={b.id: (b.room, b.status, every_of(b.on), b.model_dump_json()) for b in bs})


def names(rows: list[str]) -> list[str]:
    return [json.loads(r)["name"] for r in rows]


def test_behaviours_firings_versions_and_seen_read_back_trimmed(where: Path | ConnectionPool) -> None:
    db = BehaviourRecords.open(where, firings_kept=3)
    tick = behaviour("r", "tick", ["stroke", {"every": 30}])
    plain = behaviour("r", "plain", ["stroke"])
    paused = behaviour("s", "paused", [{"every": 5}], status="paused")
    other = behaviour("t", "other", [{"every": 60}])
    db.write(batch_of(tick, plain, paused, other))
    assert names(db.load()) == ["tick", "plain", "paused", "other"]
    assert names(db.load_room("r")) == ["tick", "plain"] and db.load_room("nope") == []
    assert db.scheduled_rooms() == ["r", "t"]  # active, on a schedule
    other.status = "paused"
    db.write(batch_of(other))  # an update keeps its place and its columns follow
    assert db.scheduled_rooms() == ["r"] and names(db.load()) == ["tick", "plain", "paused", "other"]

    db.write(Batch(versions=[(tick.id, 1, "1"), (tick.id, 2, "2"), (tick.id, 2, "ignored")],
                   firings={f.id: (f.behaviour, f.version, f.model_dump_json()) for f in [firing(tick, i, 1) for i in range(2)]}))
    db.write(Batch(firings={f.id: (f.behaviour, f.version, f.model_dump_json()) for f in [firing(tick, i, 2) for i in range(2, 5)]}))
    assert [json.loads(f)["id"] for f in db.firings(tick.id, 10)] == [f"{tick.id}.{i}" for i in (4, 3, 2)]
    assert [json.loads(f)["id"] for f in db.firings(tick.id, 2)] == [f"{tick.id}.{i}" for i in (4, 3)]
    assert db.firing(f"{tick.id}.3") is not None and db.firing(f"{tick.id}.0") is None  # trimmed
    assert db.code(tick.id, 1) is None and db.code(tick.id, 2) == "2"  # version 1: no kept firing runs it

    db.write(Batch(seen={"r": "s1\ns2", "s": "s3"}))
    assert db.seen("r") == "s1\ns2" and db.seen("s") == "s3" and db.seen("t") is None
    db.write(Batch(seen={"r": None, "s": "s4"}))
    assert db.seen("r") is None and db.seen("s") == "s4"

    db.write(Batch(removed={tick.id}))
    assert names(db.load_room("r")) == ["plain"] and db.firings(tick.id, 10) == [] and db.code(tick.id, 2) is None
    db.close()
    again = BehaviourRecords.open(where, firings_kept=3)
    assert names(again.load()) == ["plain", "paused", "other"] and again.seen("s") == "s4"
    again.close()


# ---- behaviours written before `common.sql` (the exact DDL and statements of that code) ----

SQLITE_DDL = """
CREATE TABLE IF NOT EXISTS behaviours (
    id TEXT PRIMARY KEY,
    room TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS versions (
    behaviour TEXT NOT NULL,
    version INTEGER NOT NULL,
    code TEXT NOT NULL,
    PRIMARY KEY (behaviour, version)
);
CREATE TABLE IF NOT EXISTS firings (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    behaviour TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS firings_behaviour ON firings (behaviour, seq);
CREATE TABLE IF NOT EXISTS seen (
    room TEXT PRIMARY KEY,
    ids TEXT NOT NULL
);
"""

SQLITE_WRITES = [
    "INSERT INTO behaviours (id, room, data) VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE SET data = excluded.data",
    "INSERT OR IGNORE INTO versions (behaviour, version, code) VALUES (?, ?, ?)",
    "INSERT INTO firings (id, behaviour, data) VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE SET data = excluded.data",
    "INSERT INTO seen (room, ids) VALUES (?, ?) ON CONFLICT(room) DO UPDATE SET ids = excluded.ids",
]

PG_DDL = """
CREATE SCHEMA IF NOT EXISTS inhabit;
CREATE TABLE IF NOT EXISTS inhabit.behaviours (
    seq bigserial,
    id text PRIMARY KEY,
    room text NOT NULL,
    data text NOT NULL
);
CREATE INDEX IF NOT EXISTS behaviours_room ON inhabit.behaviours (room, seq);
CREATE TABLE IF NOT EXISTS inhabit.behaviour_versions (
    behaviour text NOT NULL,
    version integer NOT NULL,
    code text NOT NULL,
    PRIMARY KEY (behaviour, version)
);
CREATE TABLE IF NOT EXISTS inhabit.behaviour_firings (
    seq bigserial PRIMARY KEY,
    id text NOT NULL UNIQUE,
    behaviour text NOT NULL,
    data text NOT NULL
);
CREATE INDEX IF NOT EXISTS behaviour_firings_behaviour ON inhabit.behaviour_firings (behaviour, seq);
CREATE TABLE IF NOT EXISTS inhabit.behaviour_seen (
    room text PRIMARY KEY,
    ids text NOT NULL
);
CREATE TABLE IF NOT EXISTS inhabit.versions (
    id bigserial PRIMARY KEY,
    room text NOT NULL,
    data bytea NOT NULL,
    saved_ms bigint NOT NULL,
    strokes int NOT NULL
);
"""
"""(With the rooms' `versions` table of the same schema, which the migration must leave alone.)"""

PG_WRITES = [
    "INSERT INTO inhabit.behaviours (id, room, data) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET data = excluded.data",
    "INSERT INTO inhabit.behaviour_versions (behaviour, version, code) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
    "INSERT INTO inhabit.behaviour_firings (id, behaviour, data) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET data = excluded.data",
    "INSERT INTO inhabit.behaviour_seen (room, ids) VALUES (?, ?) ON CONFLICT (room) DO UPDATE SET ids = excluded.ids",
]


def test_behaviours_written_before_open_with_every_record(where: Path | ConnectionPool) -> None:
    pg = isinstance(where, ConnectionPool)
    tick = behaviour("r", "tick", ["stroke", {"every": 30}], version=2)
    plain = behaviour("r", "plain", ["stroke"])
    paused = behaviour("s", "paused", [{"every": 5}], status="paused")
    firings = [firing(tick, 0, 1), firing(tick, 1, 2), firing(plain, 0)]
    behaviours, versions, firing_rows, seen = PG_WRITES if pg else SQLITE_WRITES
    raw(where, "behaviours.sqlite3", PG_DDL if pg else SQLITE_DDL, [
        (behaviours, [(b.id, b.room, b.model_dump_json()) for b in (tick, plain, paused)]),
        (versions, [(tick.id, 1, "1"), (tick.id, 2, "2"), (plain.id, 1, "1")]),
        (firing_rows, [(f.id, f.behaviour, f.model_dump_json()) for f in firings]),
        (seen, [("r", "s1\ns2")]),
    ])
    db = BehaviourRecords.open(where, firings_kept=3)
    assert db.load() == [b.model_dump_json() for b in (tick, plain, paused)]
    assert names(db.load_room("s")) == ["paused"] and db.scheduled_rooms() == ["r"]
    assert db.firings(tick.id, 10) == [firings[1].model_dump_json(), firings[0].model_dump_json()]
    assert db.firing(firings[2].id) == firings[2].model_dump_json()
    assert [db.code(tick.id, 1), db.code(tick.id, 2), db.code(plain.id, 1)] == ["1", "2", "1"]
    assert db.seen("r") == "s1\ns2"
    db.write(Batch(firings={f.id: (f.behaviour, f.version, f.model_dump_json()) for f in [firing(tick, i) for i in range(2, 4)]}))
    assert db.code(tick.id, 1) is None and db.code(tick.id, 2) == "2"  # trimmed by the back-filled versions
    with db.sql.read() as c:
        assert c.row("SELECT version FROM schema_versions WHERE store = 'behaviours'") == (1,)
        if pg:
            assert c.rows("SELECT count(*) FROM versions") == [(0,)]  # the rooms' table: still there, untouched
        else:
            assert {"versions", "firings", "seen"}.isdisjoint(c.tables())
    db.close()


# ---- BehaviourStore over each engine ----


async def test_the_store_survives_a_reopen_and_trims_firings(tmp_path):
    db = BehaviourRecords.open(tmp_path, firings_kept=3)
    store = BehaviourStore(db)
    b = Behaviour(room="r", name="n", on=["stroke"], code="1", installer=ME, state={"k": [1, 2]})
    store.save(b)
    store.save_code(b)
    for i in range(5):
        store.save_firing(Firing(id=f"{b.id}.{i}", behaviour=b.id, room="r", version=1, event=FiredEvent(type="stroke", t=i),
                                 state_before={}, seed=0, clock_ms=i, ok=True))
    store.save_seen("r", ["s1", "s2"])
    await store.flush()
    assert [f.id for f in await store.firings(b, 10)] == [f"{b.id}.{i}" for i in (4, 3, 2)]
    store.close()
    back = BehaviourStore(BehaviourRecords.open(tmp_path, firings_kept=3))
    again = back.get("r", b.id)
    assert again is not None and again.state == {"k": [1, 2]} and again.on == ["stroke"]
    assert await back.seen("r") == {"s1", "s2"} and await back.seen("other") is None
    back.forget_seen("r")  # used once: a crash later leaves none, never this older list
    assert await back.seen("r") is None
    assert await back.code(again, 1) == "1"
    back.remove(again)
    await back.flush()
    assert back.list("r") == [] and await back.firings(again, 10) == []
    back.close()


async def test_the_shared_store_holds_only_adopted_rooms_reads_others_through_and_trims(postgres):
    """Two nodes' stores on one database: what one holds and writes, the other reads through;
    schedules are found by room; firings and code versions are trimmed as in SQLite."""
    pool = open_pool(postgres.create_database(), 4)
    me = Installer(id="t1", label="alice")
    try:
        one, two = (BehaviourStore(BehaviourRecords.open(pool, firings_kept=3)) for _ in range(2))
        await one.adopt("r")
        b = Behaviour(room="r", name="n", on=["stroke", {"every": 30}], code="1", installer=me, state={"k": [1, 2]})
        one.save(b)
        one.save_code(b)
        b.version, b.code = 2, "2"
        one.save(b)
        one.save_code(b)
        for i in range(5):
            one.save_firing(Firing(id=f"{b.id}.{i}", behaviour=b.id, room="r", version=2, event=FiredEvent(type="stroke", t=i),
                                   state_before={}, seed=0, clock_ms=i, ok=True))
        one.save_seen("r", ["s1", "s2"])
        await one.flush()
        assert two.list("r") == [] and not two.holds("r")  # not adopted: not in memory
        seen_there = await two.view("r")  # read through
        assert [x.state for x in seen_there] == [{"k": [1, 2]}] and seen_there[0].version == 2
        assert await two.scheduled_rooms() == ["r"]
        assert [f.id for f in await two.firings(b, 10)] == [f"{b.id}.{i}" for i in (4, 3, 2)]
        assert await two.code(seen_there[0], 1) is None and await two.code(seen_there[0], 2) == "2"  # version 1: no firing uses it
        assert await two.seen("r") == {"s1", "s2"}
        two.forget_seen("r")
        await two.flush()
        assert await one.seen("r") is None
        b.status = "paused"
        one.save(b)
        await one.drop("r")  # written before it goes
        assert one.list("r") == [] and await one.scheduled_rooms() == []
        await two.adopt("r")
        held = two.get("r", b.id)
        assert held is not None and held.status == "paused" and two.scheduled("r") is False
        two.remove(held)
        await two.flush()
        assert await one.view("r") == [] and await one.firings(held, 10) == []
        one.close()
        two.close()
    finally:
        pool.close()
