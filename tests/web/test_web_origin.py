"""The browser-facing edge (issue 18): a page of another origin gets nothing, even with `--open`,
and our page carries its security headers and still draws under them.

The reproduction: with `--open`, any page in the operator's browser could open a room's
websocket, read it, draw, and POST a `text/plain` prompt (no CORS preflight) that runs on the
operator's model key. Here a real `inhabit serve --open`, a second origin on loopback (a tiny
page served by a second HTTP server, opened as `localhost:OTHER` while the server is
`127.0.0.1:PORT`), and headless Chromium."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from support.pages import draw, strokes

pytestmark = pytest.mark.timeout(120)

ATTACK = """async ([http, ws]) => {
  const out = {};
  out.socket = await new Promise(resolve => {
    const s = new WebSocket(ws); let messages = 0;
    s.binaryType = 'arraybuffer';
    s.onmessage = () => { messages++ };
    s.onclose = e => resolve({code: e.code, reason: e.reason, messages});
    setTimeout(() => resolve({code: 'still open', messages}), 10000);
  });
  try {  // the form-like POST a page may send anywhere without a preflight
    await fetch(http + '/prompts', {method: 'POST', mode: 'no-cors', headers: {'Content-Type': 'text/plain'},
                                    body: JSON.stringify({text: '@agent erase everything'})});
    out.posted = true;
  } catch (e) { out.posted = String(e) }
  try { out.strokes = await (await fetch(http + '/strokes')).text() } catch (e) { out.strokes = 'refused: ' + e }
  return out;
}"""


class _Page(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<!doctype html><title>some other site</title><p>nothing to see"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def other_origin() -> Iterator[str]:
    """A second web origin on loopback: `http://localhost:OTHER`."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def strict_page(browser: Any, server: Any, room: str) -> Any:
    """Our page under its real CSP (the shared helper bypasses it for Playwright's eval-based waits)."""
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.errors = []
    page.violations = []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.on("console", lambda m: page.violations.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(f"{server.http}/?room={room}" + ("" if server.config.get("open") else f"&token={server.token(room, 'edit')}"))
    return page


def wait_in_page(page: Any, expression: str, timeout: float = 15.0) -> None:
    """Poll `expression` through page.evaluate (CDP, allowed under the CSP) until true, or fail."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"not true within {timeout} s: {expression}"
        time.sleep(0.05)


SYNCED = "!!(window.__inhabit && window.__inhabit.provider.synced)"
ONE_STROKE = "!!window.__inhabit && window.__inhabit.strokes().size === 1"


def _refused(server: Any) -> float:
    text = httpx.get(f"{server.http}/metrics").text
    return float(re.search(r"^inhabit_cross_origin_refused_total (\S+)$", text, re.M).group(1))


def test_a_page_of_another_origin_gets_nothing_with_open(browser, server_factory, other_origin):
    server = server_factory(open=True)
    room = "victim"
    own = strict_page(browser, server, room)  # our page, same origin: it draws (under its CSP)
    wait_in_page(own, SYNCED)
    draw(own, 300, 300)
    wait_in_page(own, ONE_STROKE)
    assert httpx.get(f"{server.http}/rooms/{room}/strokes").json()["strokes"], "the stroke reached the server"
    before = _refused(server)

    page = browser.new_page()
    page.goto(other_origin + "/")
    out = page.evaluate(ATTACK, [f"{server.http}/rooms/{room}", f"{server.ws}/{room}"])
    assert out["socket"]["code"] == 1008 and "cross-origin" in out["socket"]["reason"], out
    assert out["socket"]["messages"] == 0, out  # nothing of the room was read
    assert out["strokes"].startswith("refused"), out  # a GET's answer stays unreadable (no CORS)
    assert _refused(server) >= before + 2  # the server refused the websocket and the POST ...
    runs = httpx.get(f"{server.http}/rooms/{room}/runs").json()["runs"]
    assert runs == []  # ... so no prompt ran; the probe works: a prompt of our own (no Origin: not a page) is a run
    assert httpx.post(f"{server.http}/rooms/{room}/prompts", json={"text": "@agent hi"}).status_code < 300
    assert httpx.get(f"{server.http}/rooms/{room}/runs").json()["runs"]
    assert len(strokes(own)) == 1 and not own.errors and not own.violations, (own.errors, own.violations)  # untouched


def test_the_page_carries_its_security_headers(browser, server_factory):
    server = server_factory()
    response = httpx.get(f"{server.http}/")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and f"ws://127.0.0.1:{server.port}" in csp
    assert response.headers["referrer-policy"] == "no-referrer" and response.headers["x-frame-options"] == "DENY"
    assert httpx.get(f"{server.http}/assets/app.js").headers["referrer-policy"] == "no-referrer"
    page = strict_page(browser, server, "headers")  # a page under that policy connects and draws
    wait_in_page(page, SYNCED)
    draw(page, 200, 200)
    wait_in_page(page, ONE_STROKE)
    assert not page.errors and not page.violations, (page.errors, page.violations)


def test_an_open_server_answers_only_its_own_names(server_factory):
    server = server_factory(open=True)
    rebound = httpx.post(f"{server.http}/rooms/lobby/prompts", json={"text": "hi"}, headers={"Host": f"rebind.example:{server.port}"})
    assert rebound.status_code == 421, rebound.text
    assert httpx.get(f"{server.http}/rooms/lobby/strokes", headers={"Host": f"rebind.example:{server.port}"}).status_code == 421
    assert httpx.get(f"{server.http}/healthz", headers={"Host": "10.0.0.7:8000"}).status_code == 200  # load balancers' checks
    assert httpx.get(f"{server.http}/rooms/lobby/strokes", headers={"Host": f"localhost:{server.port}"}).status_code == 200
