"""Helpers for the browser tests: opening a room page, drawing with the mouse, reading state."""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from support import ROOT

ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

def open_page(browser: Any, server: Any, room: str, role: str = "edit", synced: bool = True) -> Any:
    # bypass_csp: Playwright's wait_for_function polls by eval, which the page's CSP forbids (as it
    # should); tests/web/test_web_origin.py checks the page under its real CSP.
    page = browser.new_page(viewport={"width": 1280, "height": 800}, bypass_csp=True)
    page.errors = []  # type: ignore[attr-defined]
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.goto(f"{server.http}/?room={room}&token={server.token(room, role)}")
    if synced:
        page.wait_for_function("window.__inhabit && window.__inhabit.provider.synced", timeout=15000)
    return page


def draw(page: Any, x: float, y: float, n: int = 25, dx: float = 6, amp: float = 30) -> None:
    page.mouse.move(x, y)
    page.mouse.down()
    for i in range(1, n):
        page.mouse.move(x + i * dx, y + amp * math.sin(i / 4))
    page.mouse.up()


def strokes(page: Any) -> list[dict]:
    return page.evaluate("Array.from(window.__inhabit.strokes().values())")


def canvas_has_ink(page: Any, x: int, y: int, w: int, h: int) -> bool:
    """True if any pixel in the region is clearly darker than the background."""
    return page.evaluate(
        """([x, y, w, h]) => {
            const c = document.getElementById('canvas'); const d = devicePixelRatio;
            const px = c.getContext('2d').getImageData(x * d, y * d, w * d, h * d).data;
            for (let i = 0; i < px.length; i += 4) if (px[i] + px[i + 1] + px[i + 2] < 450) return true;
            return false }""",
        [x, y, w, h],
    )


def in_thread(work: Callable[[], Awaitable[Any]], timeout: float = 150) -> Any:
    """Run async `work` on a loop of its own and return its result (a page test's peers: Playwright's
    sync API owns the test thread's loop)."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = asyncio.run(work())
        except BaseException as e:  # reported below
            box["error"] = e

    t = threading.Thread(target=run)
    t.start()
    t.join(timeout)
    assert not t.is_alive() and "error" not in box, box.get("error")
    return box.get("value")
