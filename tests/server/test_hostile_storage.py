"""Durability and storage under hostile or unlucky conditions: kill -9, a full disk, huge
rewrites, oversized documents, updates with missing dependencies, damaged rows, a read-only
data folder, and a wipe rolled back from a kept version. Real server, real clients."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import subprocess
import sys

import httpx
import pytest
import websockets
from pycrdt import Doc, Map

from canvas import CanvasDoc, Stroke
from server.store import FULL_FLAG_ENV
from wire import protocol as p
from wire.client import CanvasClient

from support import ROOT

pytestmark = pytest.mark.timeout(120)

FAST = {"recv_bytes_per_s": 1_000_000_000, "recv_messages_per_s": 100_000}  # not what these tests are about


def stroke(sid: str) -> Stroke:
    return Stroke(id=sid, points=[1, 2, 0.5, 3, 4, 0.5])


async def read_ids(srv, room: str) -> set[str]:
    c = await CanvasClient.connect(srv.ws, room, srv.token())
    ids = set(c.doc.stroke_ids())
    await c.close()
    return ids


def watch(client: CanvasClient) -> set[str]:
    """Every stroke id `client` has ever seen (erased ones included)."""
    seen: set[str] = set()
    client.on_change(lambda d: seen.update(d.stroke_ids()))
    return seen


class RawWriter:
    """An editor on a raw websocket, so the test sees the close code and reason."""

    def __init__(self) -> None:
        self.doc = CanvasDoc()
        self.updates: list[bytes] = []
        self.doc.doc.observe(lambda e: self.updates.append(e.update))
        self.ws = None
        self.closed: tuple[int, str] | None = None
        self.received: list[bytes] = []

    async def connect(self, url: str) -> None:
        self.ws = await websockets.connect(url, max_size=None)
        asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        try:
            async for frame in self.ws:
                self.received.append(frame)
        except websockets.ConnectionClosed:
            pass
        self.closed = (self.ws.close_code or 0, self.ws.close_reason or "")

    async def send_stroke(self, sid: str) -> None:
        self.doc.add_strokes([stroke(sid)])
        await self.ws.send(p.sync_update(self.updates[-1]))

    async def asked(self, n: int, timeout: float = 10) -> bytes:
        """The server's `n`-th SyncStep1 (its state vector) once it has come."""
        async with asyncio.timeout(timeout):
            while True:
                steps = [m for m in self.received if isinstance(m, bytes) and m[:2] == bytes([p.MSG_SYNC, p.SYNC_STEP1])]
                if len(steps) >= n:
                    return p.decode_sync(steps[n - 1])[1]
                await asyncio.sleep(0.02)

    async def wait_closed(self, timeout: float = 10) -> tuple[int, str]:
        async with asyncio.timeout(timeout):
            while self.closed is None:
                await asyncio.sleep(0.02)
        return self.closed


async def test_kill9_loses_nothing_anyone_saw(server):
    tok = server.token()
    watcher = await CanvasClient.connect(server.ws, "k", tok)
    seen = watch(watcher)
    writers = [await CanvasClient.connect(server.ws, "k", tok) for _ in range(4)]

    async def write(w: int) -> None:
        for i in range(400):
            writers[w].doc.add_strokes([stroke(f"w{w}-{i}")])
            await asyncio.sleep(0.002)

    tasks = [asyncio.create_task(write(w)) for w in range(4)]
    await watcher.wait_for(lambda: len(seen) >= 300, 20)
    server.kill9()  # mid-stream: updates are in flight, queued and being committed
    for t in tasks:
        t.cancel()
    for c in [watcher, *writers]:
        await c.abort()
    snapshot_of_seen = set(seen)
    server.start()
    stored = await read_ids(server, "k")
    assert len(snapshot_of_seen) >= 300
    assert snapshot_of_seen <= stored, f"lost {len(snapshot_of_seen - stored)} strokes another client had received"


async def test_disk_full_refuses_edits_then_recovers(server_factory, tmp_path):
    flag = tmp_path / "disk-full"
    srv = server_factory(env={FULL_FLAG_ENV: str(flag)}, **FAST)
    tok = srv.token()
    watcher = await CanvasClient.connect(srv.ws, "f", tok)
    seen = watch(watcher)
    w = RawWriter()
    await w.connect(f"{srv.ws}/f?token={tok}")
    for i in range(20):
        await w.send_stroke(f"s{i}")
    await watcher.wait_for(lambda: len(seen) == 20, 10)

    flag.touch()  # the disk is now full
    sent = 20
    while w.closed is None and sent < 2000:
        try:
            await w.send_stroke(f"s{sent}")
        except websockets.ConnectionClosed:
            break
        sent += 1
        await asyncio.sleep(0.005)
    code, reason = await w.wait_closed()
    assert code == p.Close.UNAVAILABLE and "cannot save edits" in reason and "reconnect later" in reason, (code, reason)
    acknowledged = set(seen)  # what somebody saw while the disk was full

    flag.unlink()  # space returns: queued edits are committed, the editor re-syncs its own
    again = await CanvasClient.connect(srv.ws, "f", tok)
    again.doc.doc.apply_update(w.doc.doc.get_update())
    everything = set(w.doc.stroke_ids())
    await watcher.wait_for(lambda: everything <= seen, 15)
    await again.flush()
    await asyncio.sleep(0.2)
    srv.kill9()
    await watcher.abort()
    await again.abort()
    srv.start()
    stored = await read_ids(srv, "f")
    assert acknowledged <= stored and everything <= stored, (len(acknowledged - stored), len(everything - stored))
    log = srv.log_path.read_text(errors="replace")
    assert log.count("cannot save edits to") == 1, "one log line per failure episode"
    assert "Traceback" not in log


async def test_rewriting_a_large_value_keeps_the_file_bounded(server_factory):
    srv = server_factory(versions_kept=2, **FAST)
    a = await CanvasClient.connect(srv.ws, "big", srv.token())
    size = 2 * 1024 * 1024
    rewrites = 30
    for _ in range(rewrites):
        a.doc.strokes_map["blob"] = os.urandom(size // 2).hex()  # a fresh 2 MiB value each time
        await a.flush(20)
    probe = await CanvasClient.connect(srv.ws, "big", srv.token(), timeout=30)
    assert len(probe.doc.strokes_map["blob"]) == size
    await a.close()
    await probe.close()
    await asyncio.sleep(0.5)
    files = [srv.data_dir / f"inhabit.db{s}" for s in ("", "-wal")]
    on_disk = sum(f.stat().st_size for f in files if f.exists())
    # the history written was rewrites x 2 MiB = 60 MiB; what stays is a few copies at most
    # (snapshot, 2 versions, updates since the snapshot, free pages, the WAL)
    assert on_disk < 12 * size, f"{on_disk / 2**20:.1f} MiB on disk for a {size / 2**20:.0f} MiB document"


async def test_oversized_document_is_refused(server_factory):
    srv = server_factory(max_doc_bytes=1024 * 1024, **FAST)
    tok = srv.token()
    a = await CanvasClient.connect(srv.ws, "full", tok, reconnect=False)
    a.doc.strokes_map["one"] = "x" * 600_000
    await a.flush()
    a.doc.strokes_map["two"] = "y" * 600_000
    await a.wait_for(lambda: a.error is not None, 10)
    assert a.error.code == p.Close.ROOM_FULL and "size limit" in a.error.reason, a.error
    srv.restart()
    c = await CanvasClient.connect(srv.ws, "full", tok)
    assert set(c.doc.stroke_ids()) == {"one"}
    await c.close()
    await a.close()


async def test_update_with_missing_dependencies_is_refused_asked_again_and_not_stored(server):
    tok = server.token()
    bystander = await CanvasClient.connect(server.ws, "dep", tok)
    got: list[int] = []
    bystander.on_change(lambda d: got.append(len(d.stroke_ids())))
    src = Doc()
    m = src.get("strokes", type=Map)
    ups: list[bytes] = []
    src.observe(lambda e: ups.append(e.update))
    m["first"] = "a"
    m["orphan"] = "z" * 1_000_000  # depends on "first", which the room never gets
    w = RawWriter()
    await w.connect(f"{server.ws}/dep?token={tok}")
    await w.ws.send(p.sync_update(ups[1]))
    await w.asked(2)  # refused, and the server asks for what it lacks: an honest peer would answer
    assert w.closed is None
    for _ in range(5):  # a peer that answers with orphans again and again is closed: each costs a rebuild
        with contextlib.suppress(websockets.ConnectionClosed):
            await w.ws.send(p.sync_step2(ups[1]))
    code, reason = await w.wait_closed()
    assert code == p.Close.MALFORMED and "never received" in reason, (code, reason)

    # the dependency arriving later must not bring the refused update back to life
    late = RawWriter()
    await late.connect(f"{server.ws}/dep?token={tok}")
    await late.ws.send(p.sync_update(ups[0]))
    await bystander.wait_for(lambda d: "first" in d.stroke_ids(), 10)
    await asyncio.sleep(0.3)
    assert "orphan" not in bystander.doc.stroke_ids() and not any(n > 1 for n in got)
    fresh = await CanvasClient.connect(server.ws, "dep", tok)
    assert set(fresh.doc.stroke_ids()) == {"first"}
    await fresh.close()
    await late.ws.close()
    await bystander.close()
    db = sqlite3.connect(server.data_dir / "inhabit.db")
    stored = db.execute("SELECT COALESCE(SUM(LENGTH(data)), 0) FROM updates WHERE room = 'dep'").fetchone()[0]
    db.close()
    assert stored < 10_000, f"{stored} bytes stored for a refused update"


async def test_edits_that_race_ahead_of_the_sync_answer_are_asked_for_again_and_land(server):
    """A client that reconnects to a node that lost its last updates sends its live edits before
    it has read the server's SyncStep1 (y-websocket does): they depend on what the room lacks.
    The server refuses them, drops what follows until the client's SyncStep2, which carries all
    of it, and nothing is lost or closed."""
    tok = server.token()
    bystander = await CanvasClient.connect(server.ws, "race", tok)
    w = RawWriter()
    for sid in ("lost-a", "lost-b", "live-c", "live-d"):
        w.doc.add_strokes([stroke(sid)])  # lost-*: sent to a node that died before storing them
    await w.connect(f"{server.ws}/race?token={tok}")
    await w.ws.send(p.sync_update(w.updates[2]))  # live edits, before the SyncStep1 is read
    await w.ws.send(p.sync_update(w.updates[3]))
    for n in (1, 2):  # the client answers each SyncStep1 it reads, as y-protocols does
        await w.ws.send(p.sync_step2(w.doc.doc.get_update(await w.asked(n))))
    want = {"lost-a", "lost-b", "live-c", "live-d"}
    await bystander.wait_for(lambda d: set(d.stroke_ids()) == want, 10)
    await w.send_stroke("after")  # and the connection goes on as usual
    await bystander.wait_for(lambda d: "after" in d.stroke_ids(), 10)
    assert w.closed is None
    await w.ws.close()
    await bystander.close()
    assert await read_ids(server, "race") == want | {"after"}


async def test_damaged_row_is_quarantined_and_the_room_loads(server):
    tok = server.token()
    w = RawWriter()
    await w.connect(f"{server.ws}/dmg?token={tok}")
    for i in range(6):  # six independent peers, one stroke each: no update depends on another
        peer = CanvasDoc()
        ups: list[bytes] = []
        peer.doc.observe(lambda e, ups=ups: ups.append(e.update))
        peer.add_strokes([stroke(f"d{i}")])
        await w.ws.send(p.sync_update(ups[0]))
    assert await read_ids(server, "dmg") == {f"d{i}" for i in range(6)}
    await w.ws.close()
    server.stop()
    db = sqlite3.connect(server.data_dir / "inhabit.db")
    ids = [r[0] for r in db.execute("SELECT id FROM updates WHERE room = 'dmg' ORDER BY id")]
    db.execute("UPDATE updates SET data = ? WHERE id = ?", (b"\xff\x13garbage\x00" * 4, ids[2]))
    db.commit()
    db.close()
    server.start()
    r = httpx.get(f"{server.http}/rooms/dmg/strokes", params={"token": tok}, timeout=10)
    assert r.status_code == 200
    assert {s["id"] for s in r.json()["strokes"]} == {f"d{i}" for i in range(6)} - {"d2"}
    db = sqlite3.connect(server.data_dir / "inhabit.db")
    rows = db.execute("SELECT room, kind, error FROM quarantine").fetchall()
    left = db.execute("SELECT COUNT(*) FROM updates WHERE id = ?", (ids[2],)).fetchone()[0]
    db.close()
    assert [(room, kind) for room, kind, _ in rows] == [("dmg", "update")] and left == 0, rows
    assert "quarantine" in server.log()


@pytest.mark.parametrize("case", ["parent-is-a-file", "db-is-a-folder"])
def test_unusable_data_folder_exits_2_with_one_line(tmp_path, case):
    if case == "parent-is-a-file":
        (tmp_path / "file").write_text("")
        data = tmp_path / "file" / "data"
    else:
        data = tmp_path / "data"
        (data / "inhabit.db").mkdir(parents=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "inhabit", "serve", "--port", "0", "--data", str(data)],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2, out
    assert "Traceback" not in out.stderr and str(tmp_path) in out.stderr, out.stderr
    assert len([ln for ln in out.stderr.splitlines() if ln.startswith("inhabit serve:")]) == 1, out.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes read-only folders anyway")
def test_read_only_data_folder_exits_2(tmp_path):
    data = tmp_path / "ro"
    data.mkdir()
    data.chmod(0o500)
    try:
        out = subprocess.run([sys.executable, "-m", "inhabit", "serve", "--port", "0", "--data", str(data)], cwd=ROOT,
                             env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=60)
    finally:
        data.chmod(0o700)
    assert out.returncode == 2 and str(data) in out.stderr and "Traceback" not in out.stderr, out


async def test_wipe_then_restore_brings_the_strokes_back(server_factory):
    srv = server_factory(compact_every=5)
    edit, view = srv.token("wipe", "edit"), srv.token("wipe", "view")
    a = await CanvasClient.connect(srv.ws, "wipe", edit)
    viewer = await CanvasClient.connect(srv.ws, "wipe", view)
    for i in range(12):  # compactions (and versions) after the 5th and 10th update
        a.doc.add_strokes([stroke(f"r{i}")])
        await viewer.wait_for(lambda d, n=i + 1: len(d.stroke_ids()) == n, 10)
    a.doc.erase(a.doc.stroke_ids())  # the wipe
    await viewer.wait_for(lambda d: not d.stroke_ids(), 10)

    async with httpx.AsyncClient(base_url=srv.http, timeout=10) as http:
        r = await http.get("/rooms/wipe/versions", params={"token": view})
        assert r.status_code == 200
        versions = r.json()["versions"]
        assert [v["strokes"] for v in versions] == [10, 5], versions
        newest = versions[0]["id"]
        r = await http.post(f"/rooms/wipe/versions/{newest}/restore", params={"token": view})
        assert r.status_code == 403
        r = await http.post(f"/rooms/wipe/versions/{newest}/restore", params={"token": edit})
        assert r.status_code == 200 and r.json()["restored"] == 10, r.text
        r = await http.post("/rooms/wipe/versions/999999/restore", params={"token": edit})
        assert r.status_code == 404
    want = {f"r{i}" for i in range(10)}
    await viewer.wait_for(lambda d: set(d.stroke_ids()) == want, 10)  # every peer gets the restore
    await a.wait_for(lambda d: set(d.stroke_ids()) == want, 10)
    srv.kill9()  # the 200 meant saved
    await a.abort()
    await viewer.abort()
    srv.start()
    assert await read_ids(srv, "wipe") == want
