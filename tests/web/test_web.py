"""Browser tests for web/: real `inhabit serve` (conftest `server`) + headless Chromium."""

from __future__ import annotations

from typing import Any

import pytest

from support.live_server import LiveServer
from support.pages import ARTIFACTS, canvas_has_ink, draw, open_page, strokes


@pytest.fixture
def server(shared_server: LiveServer) -> LiveServer:
    """These tests only need rooms of their own: one server for the module."""
    return shared_server


def test_two_pages_draw_and_see_each_other(server: Any, browser: Any) -> None:
    a = open_page(browser, server, "duo")
    b = open_page(browser, server, "duo")
    draw(a, 200, 300)
    b.click("[data-testid=color-e03131]")
    draw(b, 250, 500)
    a.wait_for_function("window.__inhabit.strokes().size === 2")
    b.wait_for_function("window.__inhabit.strokes().size === 2")
    sa = sorted(strokes(a), key=lambda s: s["t"])
    assert [s["color"] for s in sa] == ["#1e1e1e", "#e03131"]
    for s in sa:  # SCHEMA: flat [x, y, p, ...], plain JSON object, kind human
        assert s["kind"] == "human" and s["id"] and len(s["points"]) % 3 == 0 and len(s["points"]) >= 30
        assert 0 < s["width"] <= 200 and isinstance(s["t"], (int, float)) and s["author"]
    # each page sees the other's cursor, with the other's name
    a.mouse.move(600, 200)
    b.mouse.move(420, 260)
    name_a = a.evaluate("window.__inhabit.me.name")
    name_b = b.evaluate("window.__inhabit.me.name")
    a.wait_for_selector(f"[data-testid=remote-cursor][data-name='{name_b}']")
    b.wait_for_selector(f"[data-testid=remote-cursor][data-name='{name_a}']")
    assert b.locator("[data-testid=avatar]").count() == 2
    # the other page's stroke is rendered on the canvas
    b.wait_for_timeout(100)
    assert canvas_has_ink(b, 190, 260, 160, 80)
    a.screenshot(path=str(ARTIFACTS / "web-duo-a.png"))
    b.screenshot(path=str(ARTIFACTS / "web-duo-b.png"))
    # a stroke in progress is visible to others through awareness before pointer-up
    a.mouse.move(300, 650)
    a.mouse.down()
    for i in range(1, 15):
        a.mouse.move(300 + i * 8, 650 - i * 4)
    b.wait_for_function(
        "[...window.__inhabit.awareness.getStates().values()].some(s => s.drawing && s.drawing.points.length >= 9)")
    assert b.evaluate("window.__inhabit.strokes().size") == 2
    a.mouse.up()
    b.wait_for_function("window.__inhabit.strokes().size === 3")
    # undo only undoes your OWN strokes
    a.keyboard.press("Control+z")
    b.wait_for_function("window.__inhabit.strokes().size === 2")
    a.keyboard.press("Control+z")
    b.wait_for_function("window.__inhabit.strokes().size === 1")
    assert [s["color"] for s in strokes(b)] == ["#e03131"]
    a.keyboard.press("Control+Shift+z")
    b.wait_for_function("window.__inhabit.strokes().size === 2")
    # eraser deletes the stroke it touches
    b.click("[data-testid=tool-erase]")
    sb = [s for s in strokes(b) if s["color"] == "#e03131"][0]
    x, y = sb["points"][0], sb["points"][1]
    cam = b.evaluate("window.__inhabit.camera.z")
    assert cam == 1
    b.mouse.move(x - 2, y)
    b.mouse.down()
    b.mouse.move(x + 4, y + 1)
    b.mouse.up()
    a.wait_for_function("window.__inhabit.strokes().size === 1")
    assert a.locator("[data-testid=connection]").get_attribute("data-state") == "connected"
    assert not a.errors and not b.errors


def test_view_only_page_cannot_draw_and_says_so(server: Any, browser: Any) -> None:
    editor = open_page(browser, server, "gallery")
    draw(editor, 200, 300)
    viewer = open_page(browser, server, "gallery", role="view")
    viewer.wait_for_function("window.__inhabit.strokes().size === 1")
    banner = viewer.locator("[data-testid=readonly-banner]")
    banner.wait_for(state="visible")
    assert "view only" in banner.inner_text().lower()
    assert viewer.locator("[data-testid=readonly-badge]").is_visible()
    assert viewer.locator("[data-testid=tool-draw]").is_disabled()
    # A viewer may still ask the agent; the run it starts is read-only, and plain chat is not sent.
    viewer.fill("[data-testid=prompt-input]", "just chatting")
    viewer.press("[data-testid=prompt-input]", "Enter")
    with viewer.expect_response(lambda r: "/prompts" in r.url) as answer:
        viewer.fill("[data-testid=prompt-input]", "@agent what is on the canvas?")
        viewer.press("[data-testid=prompt-input]", "Enter")
    assert answer.value.status == 202 and answer.value.json()["grant"] == "read"
    viewer.locator("[data-testid=prompt-input]").blur()  # keyboard shortcuts go to the canvas again
    draw(viewer, 300, 500)
    viewer.keyboard.press("e")
    draw(viewer, 200, 300)
    viewer.wait_for_timeout(500)
    assert viewer.evaluate("window.__inhabit.strokes().size") == 1
    assert editor.evaluate("window.__inhabit.strokes().size") == 1
    texts = editor.evaluate("window.__inhabit.doc.getArray('messages').toArray().map(m => m.text)")
    assert "just chatting" not in texts
    viewer.screenshot(path=str(ARTIFACTS / "web-view-only.png"))


def test_reload_and_server_restart_keep_everything(server_factory: Any, browser: Any) -> None:
    server = server_factory()  # its own: it restarts it
    a = open_page(browser, server, "keep")
    draw(a, 200, 250)
    draw(a, 200, 400)
    a.fill("[data-testid=prompt-input]", "hello from the test")
    a.keyboard.press("Enter")
    a.wait_for_function("window.__inhabit.doc.getArray('messages').length === 1")
    a.wait_for_timeout(300)
    a.reload()
    a.wait_for_function("window.__inhabit && window.__inhabit.provider.synced && window.__inhabit.strokes().size === 2")
    server.restart()
    # the open page reconnects by itself; an edit made while the server was down is kept
    a.wait_for_function("window.__inhabit.connection() === 'connected'", timeout=20000)
    draw(a, 200, 550)
    a.wait_for_timeout(300)
    server.restart()
    b = open_page(browser, server, "keep")
    b.wait_for_function("window.__inhabit.strokes().size === 3")
    b.wait_for_selector("[data-testid=message-text]:has-text('hello from the test')")
    a.wait_for_function("window.__inhabit.connection() === 'connected'", timeout=20000)
    b.screenshot(path=str(ARTIFACTS / "web-after-restart.png"))


def test_offline_edits_resync(server_factory: Any, browser: Any) -> None:
    server = server_factory()  # its own: it stops it
    a = open_page(browser, server, "offline")
    b = open_page(browser, server, "offline")
    server.stop()
    a.wait_for_function("window.__inhabit.connection() === 'offline'", timeout=15000)
    assert a.locator("[data-testid=connection]").get_attribute("data-state") == "offline"
    draw(a, 200, 300)
    server.start()
    b.wait_for_function("window.__inhabit.strokes().size === 1", timeout=20000)


def test_agent_messages_runs_and_undo_run(server: Any, browser: Any) -> None:
    """Entries in 'messages' naming a run get a run card (no agent badge: a page cannot write the
    agent's lines). Undo run asks the server, so a run
    the server has no record of (this one was written straight into the document) is refused
    with a readable message and nothing is erased."""
    a = open_page(browser, server, "agentui")
    b = open_page(browser, server, "agentui")
    draw(a, 150, 600)
    a.evaluate("""() => {
        const { doc } = window.__inhabit; const s = doc.getMap('strokes'); const m = doc.getArray('messages');
        doc.transact(() => {
          for (let i = 0; i < 5; i++) s.set('r1-' + i, { id: 'r1-' + i, points: [300 + i * 40, 200, 0.5, 330 + i * 40, 260, 0.5],
            color: '#1971c2', width: 6, author: 'Agent', kind: 'agent', run: 'run-1', t: Date.now() });
          m.push([{ id: 'm1', author: 'Agent', kind: 'agent', text: 'Drew five lines.', t: Date.now(), run: 'run-1' }]);
        });
        window.__inhabit.awareness.setLocalStateField('user', window.__inhabit.awareness.getLocalState().user);
    }""")
    b.wait_for_function("window.__inhabit.strokes().size === 6")
    run = b.locator("[data-testid=run][data-run-id='run-1']")
    run.wait_for()
    # written by a person's page, the line is shown as theirs, not the agent's (issue 18: the server
    # rewrites kind "agent" from anyone but its own peers); its run reference still gets a card
    assert b.locator("[data-testid=message][data-kind=agent]").count() == 0
    assert b.locator("[data-testid=message][data-kind=human][data-run='run-1']").count() == 1
    assert "5 strokes" in run.locator("[data-testid=run-strokes]").inner_text()
    with b.expect_response(lambda r: r.url.split("?")[0].endswith("/runs/run-1/undo")) as answer:
        run.locator("[data-testid=run-undo]").click()
    assert answer.value.request.method == "POST" and answer.value.status == 404
    run.locator("[data-testid=run-undo-error]").wait_for(state="visible")
    assert "no record of this run" in run.locator("[data-testid=run-undo-error]").inner_text()
    assert run.get_attribute("data-undone") == "false"
    assert a.evaluate("window.__inhabit.strokes().size") == 6
    # plain chat and the @agent fallback (no agent endpoint -> message) both land in 'messages'
    b.fill("[data-testid=prompt-input]", "nice")
    b.click("[data-testid=prompt-send]")
    a.wait_for_selector("[data-testid=message-text]:has-text('nice')")
    b.screenshot(path=str(ARTIFACTS / "web-agent-panel.png"))
