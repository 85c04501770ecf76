"""Interop with a real JS Yjs client (y-websocket WebsocketProvider), both directions.

Yjs and yrs can disagree on the same update in rare cases (y-crdt#632), so Python-only tests
are not enough.
"""

from __future__ import annotations

import asyncio
import json
import shutil

import pytest

from canvas import Stroke, Widget
from wire.client import CanvasClient

from support import ROOT
from support.live_server import LiveServer

PEER = ROOT / "tests" / "js" / "yjs_peer.mjs"

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def server(shared_server: LiveServer) -> LiveServer:
    """These tests only need rooms of their own: one server for the module."""
    return shared_server


async def run_peer(srv, room: str, write_id: str, wait_id: str, timeout_ms: int = 10_000, widget_write: str = "-", widget_wait: str = "-") -> dict:
    assert shutil.which("node") and (ROOT / "node_modules" / "y-websocket").exists(), "run the tests through `bin/dev test` (installs node_modules)"
    proc = await asyncio.create_subprocess_exec(
        "node", str(PEER), srv.ws, room, srv.token(), write_id, wait_id, str(timeout_ms), widget_write, widget_wait,
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout_ms / 1000 + 10)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    lines = out.decode().strip().splitlines()
    assert lines, err.decode()
    return json.loads(lines[-1])


async def test_js_to_python_and_back(server):
    py = await CanvasClient.connect(server.ws, "js", server.token(), name="py")
    py.set_awareness({"cursor": {"x": 5, "y": 6}})
    try:
        js_task = asyncio.create_task(run_peer(server, "js", "from_js", "from_py"))
        got = await py.wait_for(lambda d: d.stroke("from_js"), 15)
        assert got.author == "yjs" and got.points == [10, 20, 0.5, 30, 40, 0.7] and got.color == "#00aa00"
        py.doc.add_strokes([Stroke(id="from_py", points=[1, 2, 0.5], author="py")])
        result = await js_task
        assert result["ok"], result
        assert result["strokes"]["from_py"]["author"] == "py"
        assert any(a.get("user", {}).get("name") == "python" or a.get("cursor") == {"x": 5, "y": 6} for a in result["awareness"])
        # after the JS peer left, its awareness state is gone for us too
        await py.wait_for(lambda: not any(s.get("user", {}).get("name") == "yjs" for s in py.awareness().values()), 5)
    finally:
        await py.close()


async def test_js_sees_existing_state_and_python_sees_js_history(server):
    py = await CanvasClient.connect(server.ws, "js2", server.token())
    py.doc.add_strokes([Stroke(id=f"old{i}", points=[i, i, 0.5]) for i in range(50)])
    await asyncio.sleep(0.2)
    result = await run_peer(server, "js2", "js_only", "old49")
    assert result["ok"] and len(result["strokes"]) == 51
    await py.close()
    late = await CanvasClient.connect(server.ws, "js2", server.token())
    assert late.doc.stroke("js_only") is not None and len(late.doc.stroke_ids()) == 51
    await late.close()


async def test_widgets_cross_between_js_and_python_and_malformed_ones_are_skipped(server):
    """A stock Yjs client's text reaches a Python `CanvasDoc` and a Python peer's button reaches
    it; the malformed entry it writes beside its text is skipped by readers, and the nested
    `Y.Map` (not a plain object) is removed by the server before anybody else sees it."""
    py = await CanvasClient.connect(server.ws, "jsw", server.token(), name="py")
    seen: set[str] = set()
    py.on_change(lambda d: seen.update(d.widgets_map.keys()))
    try:
        js_task = asyncio.create_task(run_peer(server, "jsw", "-", "-", widget_write="js_text", widget_wait="py_button"))
        got = await py.wait_for(lambda d: d.widget("js_text"), 15)
        assert (got.type, got.x, got.y, got.text, got.size, got.color, got.author) == ("text", 50, 60, "hello from JS\nline two", 20, "#aa00aa", "yjs")
        assert "js_text.bad" in py.doc.widgets_map and py.doc.widget("js_text.bad") is None  # there, and skipped
        assert [w.id for w in py.doc.widgets()] == ["js_text"]
        py.doc.put_widgets([Widget(id="py_button", type="button", x=5, y=6, text="New game", author="py", kind="agent", behaviour="b1")])
        result = await js_task
        assert result["ok"], result
        button = result["widgets"]["py_button"]
        assert (button["type"], button["text"], button["behaviour"], button["anyone"]) == ("button", "New game", "b1", False)
        assert "js_text.ymap" not in result["widgets"]  # the writer's own copy got the removal
        assert "js_text.ymap" not in seen and "js_text.ymap" not in py.doc.widgets_map  # nobody else ever saw it
        assert py.doc.strokes() == []  # strokes unaffected
    finally:
        await py.close()
