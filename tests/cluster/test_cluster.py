"""Cluster mode: two and three `inhabit serve` nodes on one real Redis and one real PostgreSQL.

Clients on different nodes converge (Python clients and a real JS Yjs client), presence crosses
nodes and goes on disconnect and on node death, a node started late joins a busy room and
catches up, tokens minted for one node work on another and a revocation reaches them all.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys

import httpx
import pytest

from canvas import Stroke
from wire import protocol as p
from wire.client import CanvasClient, ClientError

from support import ROOT

PEER = ROOT / "tests" / "js" / "yjs_peer.mjs"

pytestmark = pytest.mark.timeout(120)


def stroke(sid: str) -> Stroke:
    return Stroke(id=sid, points=[1, 2, 0.5, 3, 4, 0.5], author="test")


def names(c: CanvasClient) -> set[str]:
    return {s.get("user", {}).get("name") for s in c.awareness().values()}


async def js_peer(ws_base: str, room: str, token: str, write_id: str, wait_id: str) -> dict:
    """tests/js/yjs_peer.mjs: a real Yjs + y-websocket provider; writes one stroke, waits for another."""
    assert shutil.which("node") and (ROOT / "node_modules" / "y-websocket").exists(), "run the tests through `bin/dev test`"
    proc = await asyncio.create_subprocess_exec("node", str(PEER), ws_base, room, token, write_id, wait_id, "20000", cwd=ROOT,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    lines = out.decode().strip().splitlines()
    assert lines, err.decode()
    return json.loads(lines[-1])


async def test_clients_on_two_nodes_converge_with_a_js_yjs_client(cluster):
    a, b = cluster.node(), cluster.node()
    tok = a.token()
    pa = await CanvasClient.connect(a.ws, "conv", tok, name="pa")
    pb = await CanvasClient.connect(b.ws, "conv", tok, name="pb")
    try:
        js = asyncio.create_task(js_peer(b.ws, "conv", tok, "from_js", "from_pa"))  # the JS client sits on node B
        got = await pa.wait_for(lambda d: d.stroke("from_js"), 20)  # ... and node A's client sees its stroke
        assert got.author == "yjs" and got.points == [10, 20, 0.5, 30, 40, 0.7]
        pa.doc.add_strokes([stroke("from_pa")])
        result = await js
        assert result["ok"] and result["strokes"]["from_pa"]["author"] == "test"
        for i in range(30):  # both nodes write at once
            pa.doc.add_strokes([stroke(f"a{i}")])
            pb.doc.add_strokes([stroke(f"b{i}")])
        pa.doc.erase(["a0"])
        pb.doc.erase(["b0"])
        want = {"from_js", "from_pa"} | {f"a{i}" for i in range(1, 30)} | {f"b{i}" for i in range(1, 30)}
        for c in (pa, pb):
            await c.wait_for(lambda d: set(d.stroke_ids()) == want, 10)
        assert pa.doc.doc.get_update() and set(pa.doc.stroke_ids()) == set(pb.doc.stroke_ids())
    finally:
        await pa.close()
        await pb.close()


async def test_three_nodes_converge_under_concurrent_writes(cluster):
    nodes = [cluster.node() for _ in range(3)]
    tok = nodes[0].token()
    clients = [await CanvasClient.connect(n.ws, "three", tok, name=f"c{i}") for i, n in enumerate(nodes) for _ in range(2)]
    try:
        for round_ in range(20):
            for i, c in enumerate(clients):
                c.doc.add_strokes([stroke(f"c{i}-{round_}")])
            await asyncio.sleep(0)
        want = {f"c{i}-{r}" for i in range(len(clients)) for r in range(20)}
        for c in clients:
            await c.wait_for(lambda d: set(d.stroke_ids()) == want, 15)
        fresh = [await CanvasClient.connect(n.ws, "three", tok) for n in nodes]  # what each node holds, as a joiner gets it
        assert all(set(f.doc.stroke_ids()) == want for f in fresh)
        for f in fresh:
            await f.close()
    finally:
        for c in clients:
            await c.close()


async def test_presence_crosses_nodes_and_goes_when_its_client_leaves(cluster):
    a, b = cluster.node(), cluster.node()
    tok = a.token()
    pa = await CanvasClient.connect(a.ws, "pres", tok, name="alice")
    pb = await CanvasClient.connect(b.ws, "pres", tok, name="bob")
    try:
        pa.set_awareness({"cursor": {"x": 7, "y": 8}})
        await pb.wait_for(lambda: any(s.get("cursor") == {"x": 7, "y": 8} for s in pb.awareness().values()), 5)
        await pa.wait_for(lambda: "bob" in names(pa), 5)
        late = await CanvasClient.connect(b.ws, "pres", tok, name="carol")  # joins B: gets A's presence from B
        assert {"alice", "bob"} <= names(late)
        await pa.close()
        await pb.wait_for(lambda: "alice" not in names(pb), 5)
        await late.wait_for(lambda: "alice" not in names(late), 5)
        await late.close()
    finally:
        await pa.close()
        await pb.close()


async def test_presence_goes_when_its_node_dies(cluster):
    a, b = cluster.node(node_ttl_s=2), cluster.node(node_ttl_s=2)
    tok = a.token()
    pa = await CanvasClient.connect(a.ws, "death", tok, name="alice")
    pb = await CanvasClient.connect(b.ws, "death", tok, name="bob", reconnect=False)
    try:
        await pa.wait_for(lambda: "bob" in names(pa), 5)
        b.kill9()  # no goodbye from B: A learns from B's missing heartbeat
        await pa.wait_for(lambda: "bob" not in names(pa), 10)
    finally:
        await pa.close()
        await pb.abort()


async def test_a_node_started_late_joins_a_busy_room_and_catches_up(cluster):
    a = cluster.node(compact_every=40)  # compactions go on while the room is busy
    tok = a.token()
    writers = [await CanvasClient.connect(a.ws, "busy", tok, name=f"w{i}") for i in range(3)]
    stop = asyncio.Event()

    async def write(i: int, c: CanvasClient) -> int:
        n = 0
        while not stop.is_set():
            c.doc.add_strokes([stroke(f"w{i}-{n}")])
            n += 1
            await asyncio.sleep(0.01)
        return n

    tasks = [asyncio.create_task(write(i, c)) for i, c in enumerate(writers)]
    try:
        await asyncio.sleep(1.5)
        b = cluster.node()  # starts while the writers keep writing
        late = await CanvasClient.connect(b.ws, "busy", tok, name="late")
        await asyncio.sleep(0.5)
        stop.set()
        counts = await asyncio.gather(*tasks)
        want = {f"w{i}-{n}" for i, count in enumerate(counts) for n in range(count)}
        assert len(want) > 100
        await late.wait_for(lambda d: set(d.stroke_ids()) == want, 15)
        versions = httpx.get(f"{b.http}/rooms/busy/versions", params={"token": tok}).json()["versions"]
        assert versions, "compaction stored snapshots in PostgreSQL"
        await late.close()
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        for c in writers:
            await c.close()


async def test_tokens_of_one_node_work_on_another_and_revocation_reaches_all(cluster):
    a, b = cluster.node(), cluster.node()
    view, edit = a.token("tok", "view"), a.token("tok", "edit")  # minted with the cluster's secret, from PostgreSQL
    viewer = await CanvasClient.connect(b.ws, "tok", view, name="viewer")
    editor = await CanvasClient.connect(b.ws, "tok", edit, name="editor")
    watcher = await CanvasClient.connect(a.ws, "tok", edit, name="watcher")
    try:
        editor.doc.add_strokes([stroke("e1")])
        await watcher.wait_for(lambda d: d.stroke("e1"), 5)
        viewer.doc.add_strokes([stroke("v1")])
        await viewer.wait_for(lambda: viewer.read_only == p.READ_ONLY, 5)
        assert httpx.get(f"{a.http}/rooms/tok/whoami", params={"token": view}).json()["role"] == "view"
        assert httpx.get(f"{b.http}/rooms/tok/strokes", params={"token": view}).status_code == 200
        tid = view.split(".")[3]
        subprocess.run([sys.executable, "-m", "inhabit", "revoke", tid, "--database", cluster.database_url],
                       cwd=ROOT, check=True, capture_output=True, timeout=30)
        for node in (a, b):
            for _ in range(50):
                if httpx.get(f"{node.http}/rooms/tok/whoami", params={"token": view}).status_code == 401:
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError(f"node {node.port} still accepts a revoked token")
        with pytest.raises(ClientError) as refused:
            await CanvasClient.connect(a.ws, "tok", view)
        assert refused.value.code == 4401 and "revoked" in refused.value.reason
        assert viewer.doc.stroke("v1") is not None and watcher.doc.stroke("v1") is None  # a viewer's write went nowhere
    finally:
        for c in (viewer, editor, watcher):
            await c.close()


async def test_the_widget_bound_holds_across_nodes(cluster):
    """The node that accepts a peer's update bounds its widgets: the other node's clients never
    hold more than MAX_WIDGETS, and a node loading the room later reads the same."""
    from canvas import Widget
    from canvas.schema import MAX_WIDGETS

    a, b = cluster.node(), cluster.node()
    tok = a.token()
    writer = await CanvasClient.connect(a.ws, "wbound", tok, name="writer")
    watcher = await CanvasClient.connect(b.ws, "wbound", tok, name="watcher")
    most = [0]
    watcher.on_change(lambda d: most.__setitem__(0, max(most[0], len(d.widgets_map))))
    try:
        writer.doc.put_widgets(Widget(id=f"w{i}", type="text", x=i, y=0, text="hi", t=1_000 + i) for i in range(600))
        writer.doc.add_strokes([stroke("after")])
        await watcher.wait_for(lambda d: d.stroke("after") is not None, 20)
        assert len(watcher.doc.widgets_map) == MAX_WIDGETS and most[0] == MAX_WIDGETS
        await writer.wait_for(lambda d: len(d.widgets_map) == MAX_WIDGETS, 10)
    finally:
        await writer.close()
        await watcher.close()
    late = await CanvasClient.connect(cluster.node().ws, "wbound", tok)
    try:
        assert {w.id for w in late.doc.widgets()} == {f"w{i}" for i in range(MAX_WIDGETS)}
    finally:
        await late.close()
