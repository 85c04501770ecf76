"""Widgets (text, buttons) as an agent reads them (issue 22), end to end: a real server, the
official MCP client, headless peers as the people. `view` draws texts and buttons where they
are; malformed widgets any peer wrote never break an agent's read; undoing a run removes the
widgets it made along with its strokes."""

from __future__ import annotations

import httpx
import pytest
from PIL import Image

from canvas import CanvasDoc, Stroke, Widget

from support.agent_helpers import connect
from support.live_server import LiveServer
from support.mcp_helpers import mcp_client, payload, picture

pytestmark = pytest.mark.timeout(120)

BACKGROUND = (0xFB, 0xFB, 0xFC)


@pytest.fixture
def server(shared_server: LiveServer) -> LiveServer:
    """These tests only need rooms of their own: one server for the module."""
    return shared_server


def dark(img: Image.Image, box: tuple[int, int, int, int], under: int = 120) -> int:
    """How many pixels in `box` (x0, y0, x1, y1 in pixels) are dark (every channel below `under`)."""
    x0, y0, x1, y1 = box
    return sum(1 for y in range(y0, y1) for x in range(x0, x1) if max(img.getpixel((x, y))) < under)


def malformed(doc: CanvasDoc) -> None:
    """What a careless or hostile peer may write beside real widgets: readers must skip them."""
    m = doc.widgets_map
    m["bad.type"] = {"id": "bad.type", "type": "slider", "x": 10, "y": 10, "text": "no"}
    m["bad.coords"] = {"id": "bad.coords", "type": "text", "x": "left", "y": 1e300, "text": "far"}
    m["bad.label"] = {"id": "bad.label", "type": "button", "x": 0, "y": 0, "text": "x" * 500}
    m["bad.key"] = {"id": "another", "type": "text", "x": 0, "y": 0, "text": "key and id differ"}
    m["bad.scalar"] = "just a string"


async def test_view_draws_texts_and_buttons_where_they_are_and_malformed_ones_break_nothing(server: LiveServer) -> None:
    room = "widgets-look"
    alice = await connect(server, room, "alice")
    alice.doc.add_strokes([Stroke(id="line", points=[0, 280, 0.5, 500, 280, 0.5], color="#1971c2", width=6)])
    alice.doc.put_widgets([Widget(id="score", type="text", x=50, y=40, text="X 0 – O 0", size=40),
                           Widget(id="again", type="button", x=300, y=150, text="New game", size=30, behaviour="ttt")])
    malformed(alice.doc)
    await alice.flush()
    try:
        async with mcp_client(server, room) as c:
            out = await c.call_tool("view", {"box": {"x0": 0, "y0": 0, "x1": 500, "y1": 300}, "size": 500})
            img, about = picture(out), payload(out)
            assert not out.is_error and about["units_per_px"] == 1 and (about["strokes"], about["widgets"]) == (1, 2), about
            assert dark(img, (50, 40, 230, 90)) > 200  # the score's glyphs, in its box (40 units a line)
            assert dark(img, (300, 150, 460, 210)) > 100  # the button's outline and label
            assert dark(img, (300, 150, 304, 210)) > 0  # its left edge is where the button is
            for empty in ((0, 100, 290, 140), (50, 100, 250, 150), (0, 0, 500, 35)):  # nothing drawn elsewhere (the malformed ones skipped)
                assert dark(img, empty) == 0, empty
            # the whole room, by default: the frame takes in the widgets too
            whole = payload(await c.call_tool("view", {}))
            assert whole["box"]["y0"] < 40 and whole["widgets"] == 2
            # an agent's read is unaffected by the malformed entries
            read = payload(await c.call_tool("execute", {"code": "canvas.strokes().map(s => s.id)"}))
            assert read["ok"] and read["result"] == ["line"], read
        assert {w.id for w in alice.doc.widgets()} == {"score", "again"}  # CanvasDoc skips them too
    finally:
        await alice.close()


async def test_undoing_a_run_removes_its_widgets_with_its_strokes(server: LiveServer) -> None:
    room = "widgets-undo"
    alice = await connect(server, room, "alice")
    try:
        async with mcp_client(server, room, name="claude-code") as c:
            out = payload(await c.call_tool("execute", {"code": "canvas.draw({points: [[0, 0], [50, 50]]})"}))
            assert out["ok"], out
            run_id, drawn = out["run"], out["result"]
        # the run's widgets (made by the run's own API in the product; here written with its run id)
        alice.doc.put_widgets([Widget(id="run.t", type="text", x=0, y=0, text="made by the run", kind="agent", run=run_id),
                               Widget(id="mine", type="text", x=0, y=100, text="a person's", run=None)])
        await alice.wait_for(lambda d: d.stroke(drawn) is not None, 10)
        await alice.flush()
        r = httpx.post(f"{server.http}/rooms/{room}/runs/{run_id}/undo", params={"token": server.token(room, "edit")}, timeout=30)
        assert r.status_code == 200 and sorted(r.json()["erased"]) == sorted([drawn, "run.t"]), r.text
        await alice.wait_for(lambda d: d.stroke(drawn) is None and d.widget("run.t") is None, 10)
        assert [w.id for w in alice.doc.widgets()] == ["mine"]
    finally:
        await alice.close()
