"""Browser under hostile peers: what an editor's client writes straight into the document (the CRDT
takes anything) must not freeze the page, and server refusals read as sentences.

Real `inhabit serve` (conftest `server_factory`), a real Python editor (`wire.client.CanvasClient`)
writing raw values with pycrdt, and headless Chromium."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from pycrdt import Map

from wire.client import CanvasClient

from pages import ARTIFACTS, canvas_has_ink, open_page

pytestmark = pytest.mark.timeout(120)

# What a frame costs: one rAF after a camera move, timed in the page.
FRAME = """async ([x, y, z]) => {
  const I = window.__inhabit; const t0 = performance.now();
  I.camera.set(x, y, z); await new Promise(r => requestAnimationFrame(r));
  return performance.now() - t0 }"""


def as_editor(server: Any, room: str, write: Callable[[CanvasClient], None]) -> None:
    """Connect a Python editor, let `write(client)` change the document, flush, leave.
    In a thread: Playwright's sync API owns this thread's event loop."""

    async def go() -> None:
        client = await CanvasClient.connect(server.ws, room, server.token(room, "edit"), name="mallory")
        try:
            write(client)
            await client.flush()
        finally:
            await client.close()

    errors: list[BaseException] = []
    t = threading.Thread(target=lambda: _run(go, errors))
    t.start()
    t.join(60)
    assert not t.is_alive() and not errors, errors


def _run(go: Callable[[], Any], errors: list[BaseException]) -> None:
    try:
        asyncio.run(go())
    except BaseException as e:  # reported by the caller
        errors.append(e)


def stroke(sid: str, points: list[float], **kw: Any) -> dict:
    return {"id": sid, "points": points, "color": "#1e1e1e", "width": 6.0, "author": "m", "kind": "human",
            "t": 1, **kw}


def normal_strokes(c: CanvasClient) -> None:
    strokes = c.doc.doc.get("strokes", type=Map)
    with c.doc.doc.transaction():
        for i in range(20):
            x = 200 + i * 20
            strokes[f"ok-{i}"] = stroke(f"ok-{i}", [x, 250, 0.5, x + 10, 350, 0.5, x + 15, 420, 0.5])


def hostile_strokes(c: CanvasClient) -> None:
    """Raw dicts, past pydantic: a point at 1e300, a valid stroke across the whole canvas, junk."""
    strokes = c.doc.doc.get("strokes", type=Map)
    with c.doc.doc.transaction():
        strokes["far"] = stroke("far", [100.0, 100.0, 0.5, 1e300, -1e300, 0.5])
        strokes["wide"] = stroke("wide", [-9e5, -9e5, 0.5, 9e5, 9e5, 0.5], width=2.0)
        strokes["junk"] = stroke("junk", [1, 2, 0.5, "x", 3, 0.5])
        strokes["pressure"] = stroke("pressure", [1, 2, 7.0])


def test_hostile_strokes_leave_the_page_responsive(server_factory: Any, browser: Any) -> None:
    server = server_factory()
    room = "hostile-strokes"
    as_editor(server, room, normal_strokes)
    page = open_page(browser, server, room)
    warnings: list[str] = []
    page.on("console", lambda m: warnings.append(m.text) if "invalid stroke" in m.text else None)
    page.wait_for_function("window.__inhabit.stats().strokes === 20")

    # While the tab is open (it froze for 36 s before).
    as_editor(server, room, hostile_strokes)
    page.wait_for_function("window.__inhabit.strokes().size === 24", timeout=10_000)
    t0 = time.monotonic()
    assert page.evaluate("1 + 1") == 2
    assert page.evaluate(FRAME, [0, 0, 1]) < 2000
    assert time.monotonic() - t0 < 3
    stats = page.evaluate("window.__inhabit.stats()")
    assert stats["strokes"] == 21 and stats["invalid"] == 3 and stats["largeStrokes"] == 1
    assert stats["indexCells"] < 100  # the canvas-wide stroke is in no cell
    assert len(warnings) == 1  # logged once, not per stroke

    # A new page load (it took 44 s before), then frames anywhere on the canvas.
    t0 = time.monotonic()
    fresh = open_page(browser, server, room)
    fresh.wait_for_function("window.__inhabit.stats().strokes === 21")
    load_s = time.monotonic() - t0
    frames = [fresh.evaluate(FRAME, v) for v in ([0, 0, 1], [-9e5, -9e5, 0.05], [8.9e5, 8.9e5, 8], [0, 0, 1])]
    print(f"\nhostile strokes: fresh load {load_s:.2f} s, frames (ms) {[round(f) for f in frames]}")
    assert load_s < 10 and max(frames) < 2000
    fresh.wait_for_timeout(100)
    assert canvas_has_ink(fresh, 190, 240, 420, 190)  # the normal strokes still render
    assert fresh.evaluate("window.__inhabit.stats().visible") >= 20
    fresh.screenshot(path=str(ARTIFACTS / "web-hostile-strokes.png"))
    assert not page.errors and not fresh.errors
