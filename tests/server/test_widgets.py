"""The document's widgets at the server's edges (issue 22): a room holds at most MAX_WIDGETS
widgets of at most --widget-doc-bytes, what a peer writes past that is removed before anybody
else sees it (and counted in /metrics); a version restore brings back the widgets a wipe
removed. Real server, real websocket clients."""

from __future__ import annotations

import httpx
import pytest

from canvas import Stroke, Widget
from canvas.schema import MAX_WIDGETS
from wire.client import CanvasClient

from support.live_server import LiveServer

pytestmark = pytest.mark.timeout(120)

FAST = {"recv_bytes_per_s": 1_000_000_000, "recv_messages_per_s": 100_000}


def text(i: int, prefix: str = "w", body: str = "hi") -> Widget:
    return Widget(id=f"{prefix}{i}", type="text", x=i, y=0, text=body, t=1_000 + i)


def refused(srv: LiveServer) -> float:
    line = next(ln for ln in httpx.get(f"{srv.http}/metrics", timeout=5).text.splitlines() if ln.startswith("inhabit_widgets_refused_total "))
    return float(line.split()[1])


async def test_a_peer_writing_600_widgets_leaves_at_most_the_bound_and_nobody_sees_the_rest(server_factory) -> None:
    srv = server_factory(**FAST)
    writer = await CanvasClient.connect(srv.ws, "many", srv.token("many", "edit"), name="writer")
    watcher = await CanvasClient.connect(srv.ws, "many", srv.token("many", "view"), name="watcher")
    most = [0]  # the most widgets the watcher ever held
    watcher.on_change(lambda d: most.__setitem__(0, max(most[0], len(d.widgets_map))))
    try:
        writer.doc.put_widgets(text(i) for i in range(550))  # one update past the bound: the newest 50 go
        for i in range(550, 600):  # then one at a time: each is removed
            writer.doc.put_widgets([text(i)])
        writer.doc.add_strokes([Stroke(id="after", points=[0, 0, 0.5])])
        await writer.flush()
        await watcher.wait_for(lambda d: d.stroke("after") is not None, 20)
        assert len(watcher.doc.widgets_map) == MAX_WIDGETS and most[0] == MAX_WIDGETS
        assert {w.id for w in watcher.doc.widgets()} == {f"w{i}" for i in range(MAX_WIDGETS)}  # the oldest stay
        await writer.wait_for(lambda d: len(d.widgets_map) == MAX_WIDGETS, 10)  # the writer's copy got the removal
        assert refused(srv) == 100
        # room for one more once one goes
        writer.doc.erase(["w0"])
        writer.doc.put_widgets([text(0, prefix="again")])
        await watcher.wait_for(lambda d: d.widget("again0") is not None, 10)
        assert len(watcher.doc.widgets_map) == MAX_WIDGETS and writer.error is None
    finally:
        await writer.close()
        await watcher.close()
    late = await CanvasClient.connect(srv.ws, "many", srv.token("many", "view"))
    assert len(late.doc.widgets_map) == MAX_WIDGETS  # what was stored is what was seen
    await late.close()


async def test_the_bytes_bound_removes_new_widgets_and_undoes_a_growing_edit(server_factory) -> None:
    srv = server_factory(widget_doc_bytes=4096, **FAST)
    writer = await CanvasClient.connect(srv.ws, "bytes", srv.token("bytes", "edit"))
    watcher = await CanvasClient.connect(srv.ws, "bytes", srv.token("bytes", "view"))
    try:
        writer.doc.put_widgets(text(i, body="x" * 1900) for i in range(8))  # ~2 KB each: two fit, the newest six go
        writer.doc.add_strokes([Stroke(id="one", points=[0, 0, 0.5])])
        await watcher.wait_for(lambda d: d.stroke("one") is not None, 10)
        assert {w.id for w in watcher.doc.widgets()} == {"w0", "w1"}
        # a peer that grows a kept widget past the bound gets the old one back
        first = watcher.doc.widget("w0")
        writer.doc.put_widgets([Widget(**{**first.model_dump(), "text": "y" * 2000})])
        writer.doc.add_strokes([Stroke(id="two", points=[0, 0, 0.5])])
        await watcher.wait_for(lambda d: d.stroke("two") is not None, 10)
        assert watcher.doc.widget("w0") == first
        await writer.wait_for(lambda d: d.widget("w0") == first, 10)
        assert refused(srv) == 7 and writer.error is None
    finally:
        await writer.close()
        await watcher.close()


async def test_restoring_a_version_brings_back_widgets_a_wipe_removed(server_factory) -> None:
    srv = server_factory(compact_every=5)
    edit, view = srv.token("wipew", "edit"), srv.token("wipew", "view")
    a = await CanvasClient.connect(srv.ws, "wipew", edit)
    viewer = await CanvasClient.connect(srv.ws, "wipew", view)
    try:
        for i in range(6):  # a compaction (a version) after the 5th update
            if i % 2:
                a.doc.put_widgets([Widget(id=f"b{i}", type="button", x=i * 100, y=0, text=f"press {i}", behaviour="beh")])
            else:
                a.doc.add_strokes([Stroke(id=f"s{i}", points=[i, i, 0.5])])
            await viewer.wait_for(lambda d, n=i + 1: len(d.stroke_ids()) + len(d.widgets_map) == n, 10)
        a.doc.erase([*a.doc.stroke_ids(), *a.doc.widgets_map.keys()])  # the wipe
        await viewer.wait_for(lambda d: not d.stroke_ids() and not len(d.widgets_map), 10)
        async with httpx.AsyncClient(base_url=srv.http, timeout=10) as http:
            versions = (await http.get("/rooms/wipew/versions", params={"token": view})).json()["versions"]
            r = await http.post(f"/rooms/wipew/versions/{versions[0]['id']}/restore", params={"token": edit})
        assert r.status_code == 200, r.text
        assert (r.json()["restored"], r.json()["widgets"]) == (3, 2)
        await viewer.wait_for(lambda d: {w.id for w in d.widgets()} == {"b1", "b3"} and set(d.stroke_ids()) == {"s0", "s2", "s4"}, 10)
        assert viewer.doc.widget("b3").text == "press 3" and viewer.doc.widget("b3").behaviour == "beh"
    finally:
        await a.close()
        await viewer.close()
