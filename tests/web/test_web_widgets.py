"""Text and buttons in the page (issue 22, "People" and the page's side of "Presses").

Real `inhabit serve` (the module's shared server), headless Chromium, and a real Python peer
(`wire.client.CanvasClient`) that reads what the page wrote and writes widgets the page shows.
The press route itself is another part's: here the page's request is checked, answered through
Playwright's route interception (202, or the server's refusal shapes)."""

from __future__ import annotations

import json
import subprocess
from urllib.parse import parse_qs, urlparse
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from pycrdt import Map

from canvas import Stroke, Widget
from canvas.schema import MAX_WIDGETS
from wire.client import CanvasClient

from support import ROOT
from support.live_server import LiveServer
from support.pages import ARTIFACTS, canvas_has_ink, in_thread, open_page

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def server(shared_server: LiveServer) -> LiveServer:
    return shared_server


def as_peer(server: Any, room: str, act: Callable[[CanvasClient], Awaitable[Any]]) -> Any:
    """Connect a Python editor, await `act(client)`, flush, leave; its result. In a thread:
    Playwright's sync API owns this thread's event loop."""

    async def go() -> Any:
        client = await CanvasClient.connect(server.ws, room, server.token(room, "edit"), name="py")
        try:
            out = await act(client)
            await client.flush()
            return out
        finally:
            await client.close()

    return in_thread(go, 60)


def peer_widgets(server: Any, room: str, until: Callable[[list[Widget]], bool]) -> list[Widget]:
    """The room's widgets as a Python peer reads them (`CanvasDoc.widgets()`), once `until` holds."""

    async def read(c: CanvasClient) -> list[Widget]:
        await c.wait_for(lambda: until(c.doc.widgets()), timeout=10)
        return c.doc.widgets()

    return as_peer(server, room, read)


def put(server: Any, room: str, *widgets: Widget, raw: dict[str, Any] | None = None) -> None:
    """A Python peer places widgets (and raw, unchecked values straight into the map)."""

    async def write(c: CanvasClient) -> None:
        c.doc.put_widgets(widgets)
        if raw:
            m = c.doc.doc.get("widgets", type=Map)
            with c.doc.doc.transaction():
                for k, v in raw.items():
                    m[k] = v

    as_peer(server, room, write)


def center(page: Any, wid: str) -> tuple[float, float]:
    box = page.evaluate("(id) => window.__inhabit.widgetScreenBox(id)", wid)
    assert box, f"widget {wid} is not drawn"
    return box["x"] + box["w"] / 2, box["y"] + box["h"] / 2


def test_a_person_writes_edits_erases_and_undoes_a_text(server: Any, browser: Any) -> None:
    room = "text-tool"
    page = open_page(browser, server, room)
    page.click("[data-testid=tool-text]")
    page.mouse.click(400, 300)
    page.wait_for_selector("[data-testid=text-editor]:focus")
    page.keyboard.type("Hello")
    page.keyboard.press("Shift+Enter")  # a new line, not the end
    page.keyboard.type("world")
    page.keyboard.press("Enter")
    page.wait_for_selector("[data-testid=text-editor]", state="hidden")

    [w] = peer_widgets(server, room, lambda ws: len(ws) == 1)
    assert (w.type, w.text, w.kind, w.size, w.color) == ("text", "Hello\nworld", "human", 24, "#1e1e1e")
    assert w.author == page.evaluate("window.__inhabit.me.name")
    assert 395 <= w.x <= 405 and 270 <= w.y <= 300  # where it was clicked (camera at 0, 0, zoom 1)
    box = page.evaluate("(id) => window.__inhabit.widgetScreenBox(id)", w.id)
    assert box["h"] > 50 and box["w"] > 40  # two lines of 24-unit text
    page.wait_for_timeout(100)
    assert canvas_has_ink(page, int(box["x"]), int(box["y"]), int(box["w"]), int(box["h"]))

    # a double-click edits it (with the pen selected: the taps leave no dots)
    page.click("[data-testid=tool-draw]")
    x, y = center(page, w.id)
    page.screenshot(path=str(ARTIFACTS / "web-text-drawn.png"), clip={"x": 350, "y": 240, "width": 200, "height": 120})
    page.mouse.dblclick(x, y)
    page.wait_for_selector("[data-testid=text-editor]:focus")
    page.screenshot(path=str(ARTIFACTS / "web-text-editing.png"), clip={"x": 350, "y": 240, "width": 200, "height": 120})
    assert page.input_value("[data-testid=text-editor]") == "Hello\nworld"
    page.keyboard.press("Control+a")
    page.keyboard.type("Bye")
    page.mouse.click(900, 600)  # a click away finishes it, and draws nothing
    [w2] = peer_widgets(server, room, lambda ws: len(ws) == 1 and ws[0].text == "Bye")
    assert w2.id == w.id and page.evaluate("window.__inhabit.strokes().size") == 0

    # the eraser removes it; undo brings it back, redo removes it again
    page.click("[data-testid=tool-erase]")
    x, y = center(page, w.id)
    page.mouse.move(x - 5, y)
    page.mouse.down()
    page.mouse.move(x + 5, y)
    page.mouse.up()
    assert peer_widgets(server, room, lambda ws: not ws) == []
    page.keyboard.press("Control+z")
    [back] = peer_widgets(server, room, lambda ws: len(ws) == 1)
    assert back.text == "Bye"
    page.keyboard.press("Control+z")  # the edit
    peer_widgets(server, room, lambda ws: len(ws) == 1 and ws[0].text == "Hello\nworld")
    page.keyboard.press("Control+Shift+z")
    page.keyboard.press("Control+Shift+z")
    assert peer_widgets(server, room, lambda ws: not ws) == []
    page.screenshot(path=str(ARTIFACTS / "web-text-tool.png"))
    assert not page.errors


def test_a_peers_text_shows_where_it_is_and_malformed_widgets_are_skipped(server: Any, browser: Any) -> None:
    room = "text-peer"
    page = open_page(browser, server, room)
    warnings: list[str] = []
    page.on("console", lambda m: warnings.append(m.text) if "invalid widget" in m.text else None)
    good = {"id": "ok", "type": "text", "x": 1, "y": 2, "text": "ok", "size": 24, "color": "#1e1e1e",
            "author": "m", "kind": "human", "anyone": False, "t": 1}
    put(server, room, Widget(id="score", type="text", x=300, y=200, text="X 0 – O 0", size=40, color="#e03131"), raw={
        "far": {**good, "id": "far", "x": 1e300},
        "slider": {**good, "id": "slider", "type": "slider"},
        "long": {**good, "id": "long", "type": "button", "text": "b" * 200},
        "mismatch": {**good, "id": "other"},
        "junk": "not an object",
        "size": {**good, "id": "size", "size": -3},
    })
    page.wait_for_function("window.__inhabit.stats().widgets === 1 && window.__inhabit.stats().invalidWidgets === 6")
    assert len(warnings) == 1  # logged once, not per entry
    box = page.evaluate("window.__inhabit.widgetScreenBox('score')")
    assert abs(box["x"] - 300) < 1 and abs(box["y"] - 200) < 1 and box["w"] > 100
    page.wait_for_timeout(100)
    assert canvas_has_ink(page, 300, 200, int(box["w"]), int(box["h"])) or _reddish(page, 300, 200, box)
    assert not canvas_has_ink(page, 300, 320, 200, 60)

    # it pans and zooms with the canvas
    page.evaluate("window.__inhabit.camera.set(100, 50, 2)")
    moved = page.evaluate("window.__inhabit.widgetScreenBox('score')")
    assert abs(moved["x"] - 400) < 1 and abs(moved["y"] - 300) < 1 and abs(moved["w"] - 2 * box["w"]) < 1
    page.wait_for_timeout(300)
    assert _reddish(page, 400, 300, moved)
    # the Python peer's reader skips the same malformed entries (it does not compare key and id:
    # the page does, as it does for strokes)
    assert [w.id for w in peer_widgets(server, room, lambda ws: True) if w.id != "other"] == ["score"]
    assert not page.errors


def _reddish(page: Any, x: float, y: float, box: dict) -> bool:
    """True if the region holds pixels of the text's red (#e03131)."""
    return page.evaluate(
        """([x, y, w, h]) => {
            const c = document.getElementById('canvas'); const d = devicePixelRatio;
            const px = c.getContext('2d').getImageData(x * d, y * d, w * d, h * d).data;
            for (let i = 0; i < px.length; i += 4) if (px[i] > 180 && px[i + 1] < 120 && px[i + 2] < 120) return true;
            return false }""",
        [int(x), int(y), int(box["w"]), int(box["h"])],
    )


# What a frame costs: one rAF after a camera move, timed in the page (as tests/web/test_web_hostile.py).
FRAME = """async ([x, y, z]) => {
  const I = window.__inhabit; const t0 = performance.now();
  I.camera.set(x, y, z); await new Promise(r => requestAnimationFrame(r));
  return performance.now() - t0 }"""


def _pressable_buttons(server: Any, room: str) -> None:
    put(server, room,
        Widget(id="new-game", type="button", x=200, y=200, text="New game", behaviour="b-1"),
        Widget(id="vote", type="button", x=200, y=400, text="Vote", behaviour="b-1", anyone=True))


def _answer(page: Any, status: int, body: dict) -> dict[str, Any]:
    """Answer every press with the `status` and `body` of the returned dict (change them between
    presses: one route for the page's life, as re-routing raced with the next press); the requests
    it answered are in its "seen"."""
    answer: dict[str, Any] = {"status": status, "body": body, "seen": []}

    def handle(route: Any) -> None:
        answer["seen"].append(route.request)
        route.fulfill(status=answer["status"], content_type="application/json", body=json.dumps(answer["body"]),
                      headers={"Retry-After": "7"} if answer["status"] == 429 else {})

    page.route("**/widgets/*/press*", handle)
    return answer


def test_clicking_a_button_presses_it_until_its_behaviour_answers(server: Any, browser: Any) -> None:
    room = "buttons"
    _pressable_buttons(server, room)
    page = open_page(browser, server, room)
    page.wait_for_function("window.__inhabit.stats().widgets === 2")
    answer = _answer(page, 202, {"ok": True})
    x, y = center(page, "new-game")
    page.wait_for_timeout(100)
    assert canvas_has_ink(page, int(x) - 10, int(y) - 5, 20, 10)  # the button is drawn where it is
    with page.expect_request("**/widgets/new-game/press*") as req:
        page.mouse.click(x, y)
    r = req.value
    assert r.method == "POST" and f"/rooms/{room}/widgets/new-game/press" in r.url
    assert parse_qs(urlparse(r.url).query)["token"] == [server.token(room, "edit")]  # as the page's other POSTs
    assert page.evaluate("window.__inhabit.presses.isPressed('new-game')")
    assert page.evaluate("window.__inhabit.strokes().size") == 0  # a press draws nothing

    # pressed until the firing's writes arrive: a stroke tagged with the button's behaviour
    async def firing_writes(c: CanvasClient) -> None:
        c.doc.add_strokes([Stroke(id="o-1", points=[10, 10, 0.5, 20, 20, 0.5], color="#1971c2", width=4,
                                  author="agent", kind="agent", behaviour="b-1", run="f-1")])

    as_peer(server, room, firing_writes)
    page.wait_for_function("!window.__inhabit.presses.isPressed('new-game')")
    assert len(answer["seen"]) == 1

    # a refusal releases it at once, and the page says why
    answer.update(status=409, body={"error": "this button's behaviour is paused"})
    page.mouse.click(x, y)
    page.wait_for_selector("[data-testid=stage-notice]:has-text('paused')")
    assert not page.evaluate("window.__inhabit.presses.isPressed('new-game')")
    answer.update(status=429, body={"error": "too many presses", "retry_after": 7})
    page.mouse.click(x, y)
    page.wait_for_selector("[data-testid=stage-notice]:has-text('slow down')")
    assert "7 s" in page.inner_text("[data-testid=stage-notice]")
    page.screenshot(path=str(ARTIFACTS / "web-buttons.png"))

    # a room holding MAX_WIDGETS: the text tool says so instead of writing one more
    put(server, room, *(Widget(id=f"w{i}", type="button" if i % 2 else "text", x=5000 + (i % 25) * 36, y=5000 + (i // 25) * 30,
                               text=f"w{i}", size=14) for i in range(MAX_WIDGETS - 2)))
    page.wait_for_function(f"window.__inhabit.widgetMap().size === {MAX_WIDGETS}")
    # what a full room costs a frame: ~250 texts (in the cached scene) and ~250 buttons (every frame) in view
    page.evaluate(FRAME, [4990, 4990, 1])
    page.evaluate("window.__inhabit.resetFrameTimes()")
    frames = [page.evaluate(FRAME, [4990 + dx, 4990, 1]) for dx in range(3, 60, 3)]
    stats = page.evaluate("window.__inhabit.stats()")
    print(f"\n{MAX_WIDGETS} widgets in view, panning: draw p50 {stats['p50']:.1f} ms, p95 {stats['p95']:.1f} ms, "
          f"frame (move -> rAF) max {max(frames):.0f} ms")
    assert stats["p95"] < 200  # generous: the machine is shared; a few ms unloaded
    page.evaluate("window.__inhabit.camera.set(0, 0, 1)")
    page.click("[data-testid=tool-text]")
    page.mouse.click(600, 650)
    page.wait_for_selector("[data-testid=stage-notice]:has-text('erase some first')")
    assert page.is_hidden("[data-testid=text-editor]")
    assert not page.errors


def test_a_viewer_presses_only_buttons_made_for_anyone(server: Any, browser: Any) -> None:
    room = "buttons-view"
    _pressable_buttons(server, room)
    viewer = open_page(browser, server, room, role="view")
    viewer.wait_for_selector("[data-testid=readonly-badge]", state="visible")
    viewer.wait_for_function("window.__inhabit.stats().widgets === 2")
    _answer(viewer, 202, {"ok": True})
    seen: list[Any] = []  # listened to before expect_request's waiter: filled by the time it returns
    viewer.on("request", lambda r: seen.append(r) if "/press" in r.url else None)
    assert not viewer.evaluate("window.__inhabit.presses.allowed(window.__inhabit.widgets.get('new-game').widget)")
    viewer.mouse.click(*center(viewer, "new-game"))  # looks disabled, does nothing
    with viewer.expect_request("**/widgets/vote/press*"):
        viewer.mouse.click(*center(viewer, "vote"))
    assert [r.url.split("/widgets/")[1].split("/")[0] for r in seen] == ["vote"]
    # nor can a viewer write text: the text tool is off, a double-click on nothing edits nothing
    assert viewer.is_disabled("[data-testid=tool-text]")
    viewer.keyboard.press("t")
    viewer.mouse.click(600, 600)
    assert viewer.is_hidden("[data-testid=text-editor]")
    assert viewer.evaluate("window.__inhabit.widgetMap().size") == 2
    assert not viewer.errors


def test_a_stock_yjs_client_and_the_page_see_each_others_text(server: Any, browser: Any) -> None:
    room = "text-yjs"
    page = open_page(browser, server, room)
    peer = subprocess.Popen(["node", str(ROOT / "tests" / "js" / "yjs_widget_peer.mjs"), server.ws, room,
                             server.token(room, "edit"), "from the page", "yjs-1", "15000"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        page.keyboard.press("t")
        page.mouse.click(300, 300)
        page.wait_for_selector("[data-testid=text-editor]:focus")
        page.keyboard.type("from the page")
        page.keyboard.press("Enter")
        out, err = peer.communicate(timeout=30)
    finally:
        peer.kill()
    seen = json.loads(out.strip().splitlines()[-1]) if out.strip() else {"ok": False, "error": err}
    assert seen["ok"], seen
    [mine] = [w for w in seen["widgets"].values() if w["text"] == "from the page"]
    assert mine["type"] == "text" and mine["kind"] == "human" and mine["size"] == 24
    page.wait_for_function("window.__inhabit.stats().widgets === 2")
    box = page.evaluate("window.__inhabit.widgetScreenBox('yjs-1')")
    assert abs(box["x"] - 500) < 1 and abs(box["y"] - 520) < 1
    page.wait_for_timeout(100)
    assert canvas_has_ink(page, 500, 520, int(box["w"]), int(box["h"]))
    assert not page.errors
