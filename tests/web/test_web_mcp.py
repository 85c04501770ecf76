"""Browser + MCP: two MCP clients (the official SDK's client) and a page in one room. The page
shows both clients in presence, with cursors where they drew, their strokes, and a run card
for each client's run; when the clients end their sessions their presence goes."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

from support.mcp_helpers import mcp_client, payload
from support.pages import ARTIFACTS, canvas_has_ink, draw, open_page, strokes

CIRCLE = """
const pts = [];
for (let i = 0; i <= 40; i++) { const a = i / 40 * 2 * Math.PI; pts.push([300 + 80 * Math.cos(a), 320 + 80 * Math.sin(a)]); }
[canvas.draw({points: pts, color: '#1971c2', width: 6}), canvas.draw({points: [[260, 320], [340, 320]], width: 6})]
"""
SQUARE = """
const corners = [[620, 240], [780, 240], [780, 400], [620, 400], [620, 240]], s = [];
for (let i = 0; i < 4; i++) for (let t = 0; t < 1; t += 0.05) {  // dense points: the page smooths sparse polylines
  const [a, b] = [corners[i], corners[i + 1]]; s.push([a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t]);
}
s.push(corners[4]);
[canvas.draw({points: s, color: '#e03131', width: 6}), canvas.draw({points: [[620, 240], [700, 320], [780, 400]], color: '#e03131', width: 6})]
"""
CLIENTS = {"claude-code": CIRCLE, "cursor": SQUARE}


class Clients(threading.Thread):
    """The MCP clients, on their own event loop (Playwright's sync API owns this thread): each
    connects and executes its program, then all hold their sessions until `release()`."""

    def __init__(self, server: Any, room: str) -> None:
        super().__init__(daemon=True)
        self.server, self.room = server, room
        self.ready, self._release = threading.Event(), threading.Event()
        self.results: dict[str, Any] = {}
        self.error: BaseException | None = None

    def run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        try:
            async with contextlib.AsyncExitStack() as stack:
                for name, code in CLIENTS.items():
                    client = await stack.enter_async_context(mcp_client(self.server, self.room, name=name))
                    self.results[name] = payload(await client.call_tool("execute", {"code": code}))
                self.ready.set()
                await asyncio.to_thread(self._release.wait, 120)
        except BaseException as e:  # handed to the test thread
            self.error = e
            self.ready.set()

    def release(self) -> None:
        self._release.set()
        self.join(60)


def test_two_mcp_clients_and_a_page(server: Any, browser: Any) -> None:
    room = "webmcp"
    page = open_page(browser, server, room)
    clients = Clients(server, room)
    clients.start()
    try:
        assert clients.ready.wait(90) and clients.error is None, clients.error
        assert all(r["ok"] for r in clients.results.values()), clients.results
        for name in CLIENTS:  # in presence, as agents, with a cursor where they drew
            page.wait_for_selector(f"[data-testid=avatar][data-kind=agent][title='{name}']", state="attached")
            page.wait_for_selector(f"[data-testid=remote-cursor][data-kind=agent][data-name='{name}']")
        page.wait_for_function("window.__inhabit.strokes().size === 4")
        by_author: dict[str, set[str]] = {}
        for s in strokes(page):
            assert s["kind"] == "agent"
            by_author.setdefault(s["author"], set()).add(s["run"])
        assert by_author == {name: {r["run"]} for name, r in clients.results.items()}
        for r in clients.results.values():  # each run has its card in the chat, done, with its strokes
            card = f"[data-testid=run][data-run-id='{r['run']}']"
            page.wait_for_selector(f"{card} [data-testid=run-status][data-status=done]")
            assert page.locator(f"{card} [data-testid=run-strokes]").inner_text() == "2 strokes"
        page.wait_for_timeout(100)
        assert canvas_has_ink(page, 210, 230, 180, 180) and canvas_has_ink(page, 610, 230, 180, 180)
        page.screenshot(path=str(ARTIFACTS / "web-mcp.png"))
    finally:
        clients.release()
    page.wait_for_function("document.querySelectorAll('[data-testid=avatar][data-kind=agent]').length === 0")
    assert not page.errors


UNDERLINE = r"""
for (const s of event.strokes ?? []) canvas.draw({points: [[s.bbox.x0, s.bbox.y1 + 12], [s.bbox.x1, s.bbox.y1 + 12]], color: '#d12d2d', width: 4});
"""


def test_an_mcp_clients_behaviour_fires_on_a_stroke_drawn_in_the_browser(server: Any, browser: Any) -> None:
    """Issue 21: an MCP client (speaking only the 2026-07-28 revision) leaves a behaviour; a person's
    stroke drawn in the page fires it, with no further call from the client."""
    room = "web-mcp-behaviour"
    page = open_page(browser, server, room)

    async def install() -> Any:
        async with mcp_client(server, room, name="claude-code", mode="2026-07-28") as client:
            return payload(await client.call_tool("execute", {"code": UNDERLINE, "on": ["stroke"], "name": "underline"}))

    box: dict[str, Any] = {}
    t = threading.Thread(target=lambda: box.update(out=asyncio.run(install())))
    t.start()
    t.join(60)
    out = box.get("out")
    assert out and out["ok"] and out["behaviour"]["name"] == "underline", out
    page.locator("[data-testid=behaviour]").filter(has_text="underline").wait_for(timeout=15000)  # its card, as any behaviour's

    draw(page, 300, 300)
    page.wait_for_function("window.__inhabit.strokes().size === 2", timeout=15000)  # the person's stroke and its underline
    tagged = [s for s in strokes(page) if s.get("behaviour") == out["behaviour"]["id"]]
    assert len(tagged) == 1 and tagged[0]["kind"] == "agent", strokes(page)
    assert not page.errors
