"""The page when its link is revoked or expires while it is open (issue 18): real `inhabit serve`
and headless Chromium. The server closes the page's websocket with 4401 and the reason; the
banner says "Link revoked" / "Link expired" with the server's words, the page turns read-only
and does not try to reconnect (a reconnect would be refused the same way)."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest

from support.live_server import LiveServer
from support.pages import ARTIFACTS

pytestmark = [pytest.mark.timeout(120), pytest.mark.serial]  # 2-s bounds: runs with at most one other test

CUT_S = 2.0


@pytest.fixture
def server(shared_server: LiveServer) -> LiveServer:
    """These tests only need rooms and links of their own: one server for the module."""
    return shared_server


def open_with(browser: Any, server: LiveServer, room: str, link: str) -> tuple[Any, list[str]]:
    """A synced page on `link`, and the websockets it opens from then on."""
    page = browser.new_page(viewport={"width": 1280, "height": 800}, bypass_csp=True)  # see support/pages.open_page
    page.goto(f"{server.http}/?room={room}&token={link}")
    page.wait_for_function("window.__inhabit && window.__inhabit.provider.synced", timeout=15000)
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    return page, sockets


def shows_lapse(page: Any, label: str, reason: str, sockets: list[str]) -> None:
    conn = page.locator("[data-testid=connection]")
    assert conn.get_attribute("data-state") == "denied" and conn.get_attribute("data-code") == "4401"
    assert label in conn.inner_text()
    assert page.locator("[data-testid=connection-reason]").inner_text() == reason  # the server's words
    assert page.locator("#readonly-banner").is_visible() and label in page.locator("#readonly-banner").inner_text()
    page.wait_for_timeout(1500)
    assert sockets == []  # no reconnect loop


def test_the_page_says_its_link_was_revoked_and_stops(server: LiveServer, browser: Any) -> None:
    room = "web-revoked"
    link = server.access().mint(room, "edit", name="Dana")
    page, sockets = open_with(browser, server, room, link)
    revoked_at = time.monotonic()
    server.access().revoke(link)
    page.wait_for_selector("[data-testid=connection][data-state=denied]", timeout=int((CUT_S + 3) * 1000))
    took = time.monotonic() - revoked_at
    assert took < CUT_S, f"the page learnt of the revocation {took:.2f} s after it"
    page.screenshot(path=str(ARTIFACTS / "web-link-revoked.png"))
    shows_lapse(page, "Link revoked", "this link was revoked", sockets)
    page.close()


def test_the_page_says_its_link_expired_and_stops(server: LiveServer, browser: Any) -> None:
    room = "web-expired"
    link = server.access().mint(room, "view", expires=timedelta(seconds=3))
    page, sockets = open_with(browser, server, room, link)
    page.wait_for_selector("[data-testid=connection][data-state=denied]", timeout=(CUT_S + 6) * 1000)
    shows_lapse(page, "Link expired", "this link expired", sockets)
    page.close()
