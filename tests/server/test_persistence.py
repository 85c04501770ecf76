"""Persistence: restart, kill -9 and compaction lose no applied update."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest
from pycrdt import Doc, Map

from canvas import Stroke
from server.store import Snapshot, Store
from server.writer import Writer
from wire.client import CanvasClient

pytestmark = pytest.mark.timeout(90)


def s(i: int | str) -> Stroke:
    return Stroke(id=f"p{i}", points=[1, 2, 0.5, 3, 4, 0.5])


async def write_and_observe(srv, room: str, ids: list[str]) -> None:
    """Write strokes with one client; return once ANOTHER client saw them (= server applied)."""
    tok = srv.token()
    a = await CanvasClient.connect(srv.ws, room, tok)
    b = await CanvasClient.connect(srv.ws, room, tok)
    for i in ids:  # one transaction (one update) each
        a.doc.add_strokes([s(i)])
    await b.wait_for(lambda d: {f"p{i}" for i in ids} <= set(d.stroke_ids()), 10)
    await a.close()
    await b.close()


async def read_ids(srv, room: str) -> set[str]:
    c = await CanvasClient.connect(srv.ws, room, srv.token())
    ids = set(c.doc.stroke_ids())
    await c.close()
    return ids


async def test_graceful_restart_loses_nothing(server):
    await write_and_observe(server, "g", [str(i) for i in range(20)])
    server.restart()
    assert await read_ids(server, "g") == {f"p{i}" for i in range(20)}


async def test_kill9_loses_no_applied_update(server):
    tok = server.token()
    a = await CanvasClient.connect(server.ws, "k", tok)
    b = await CanvasClient.connect(server.ws, "k", tok)
    for i in range(50):
        a.doc.add_strokes([s(i)])
    await b.wait_for(lambda d: len(d.stroke_ids()) == 50, 10)
    await asyncio.sleep(0.15)  # the writer commits within 100 ms of applying
    server.kill9()
    await a.close()
    await b.close()
    server.start()
    assert await read_ids(server, "k") == {f"p{i}" for i in range(50)}


async def test_compaction_loses_nothing_and_bounds_growth(server_factory):
    srv = server_factory(compact_every=25)
    tok = srv.token()
    a = await CanvasClient.connect(srv.ws, "c", tok)
    b = await CanvasClient.connect(srv.ws, "c", tok)
    for i in range(300):
        a.doc.add_strokes([s(i)])
        if i % 3 == 0:
            a.doc.erase([f"p{i}"])
    want = {f"p{i}" for i in range(300) if i % 3}
    await b.wait_for(lambda d: set(d.stroke_ids()) == want, 10)
    await asyncio.sleep(0.2)
    db = sqlite3.connect(srv.data_dir / "inhabit.db")
    n_updates = db.execute("SELECT COUNT(*) FROM updates WHERE room='c'").fetchone()[0]
    n_snap = db.execute("SELECT COUNT(*) FROM snapshots WHERE room='c'").fetchone()[0]
    db.close()
    assert n_snap == 1 and n_updates < 25, (n_snap, n_updates)
    srv.kill9()
    await a.close()
    await b.close()
    srv.start()
    assert await read_ids(srv, "c") == want


async def test_store_writer_interleaved_snapshots(tmp_path):
    """Unit level: snapshots taken between appends never drop the appends after them."""
    store = Store(tmp_path / "x.db")
    writer = Writer(store)
    writer.start()
    doc = Doc()
    m = doc.get("strokes", type=Map)
    updates: list[bytes] = []
    doc.observe(lambda e: updates.append(e.update))
    for i in range(200):
        m[f"k{i}"] = i
        writer.append("r", updates[-1])
        if i % 37 == 0:
            writer.snapshot("r", Snapshot(doc.get_update(), 0))
        if i % 50 == 0:
            await writer.flush()
    await writer.close()
    rows = store.load("r")
    n = sum(r.kind == "update" for r in rows)
    assert 0 < n < 200  # the last snapshot replaced the rows before it
    loaded = Doc()
    for row in rows:
        loaded.apply_update(row.data)
    assert dict(loaded.get("strokes", type=Map)) == dict(m)
    store.close()


def test_store_migrates_a_version_1_database(tmp_path):
    """A data folder written by version 1 (AUTOINCREMENT ids) opens with every update, in
    order, and later appends still sort after them."""
    path = tmp_path / "v1.db"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE updates (id INTEGER PRIMARY KEY AUTOINCREMENT, room TEXT NOT NULL, data BLOB NOT NULL);
        CREATE INDEX updates_room ON updates (room, id);
        PRAGMA user_version = 1;
    """)
    doc = Doc()
    m = doc.get("strokes", type=Map)
    updates: list[bytes] = []
    doc.observe(lambda e: updates.append(e.update))
    for i in range(5):
        m[f"k{i}"] = i
    db.executemany("INSERT INTO updates (room, data) VALUES (?, ?)", [("r", u) for u in updates])
    db.commit()
    db.close()
    store = Store(path)
    m["k4"] = 44  # overwrites k4: loads right only if the new row comes after the old ones
    store.write([("r", updates[-1])], {})
    sql = store._db.execute("SELECT sql FROM sqlite_master WHERE name = 'updates'").fetchone()[0]
    assert "AUTOINCREMENT" not in sql.upper()
    assert store._db.execute("SELECT name FROM sqlite_master WHERE name = 'updates_room'").fetchone()
    loaded = Doc()
    for row in store.load("r"):
        loaded.apply_update(row.data)
    assert dict(loaded.get("strokes", type=Map)) == {"k0": 0, "k1": 1, "k2": 2, "k3": 3, "k4": 44}
    store.close()
