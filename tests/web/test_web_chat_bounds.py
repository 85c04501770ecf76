"""The page and the chat's bounds (issue 19, item 7): real `inhabit serve` and headless Chromium.
The server keeps only the newest lines in the document; the page pages the older ones in from
`GET /rooms/NAME/chat` ("Show older messages"); an editor clears the room's chat with the
panel's "Clear chat" (a view link's page has no such button); a line past the link's chat
rate disappears with a notice saying why."""

from __future__ import annotations

from typing import Any

import pytest

from support.pages import ARTIFACTS, open_page

pytestmark = pytest.mark.timeout(120)

FAST = {"recv_bytes_per_s": 1_000_000_000, "recv_messages_per_s": 100_000}
POST_LINES = """(n) => {
  const msgs = window.__inhabit.doc.getArray('messages')
  for (let i = 0; i < n; i++) msgs.push([{ id: 'l' + i, author: 'Ann', kind: 'human', text: 'line ' + i, t: Date.now() }])
}"""


def texts(page: Any) -> list[str]:
    return page.locator("[data-testid=message-text]").all_inner_texts()


def test_an_editor_reads_older_lines_and_clears_the_chat_a_viewer_cannot(server_factory: Any, browser: Any) -> None:
    srv = server_factory(chat_lines=8, chat_bytes_per_minute=1_000_000, **FAST)
    room = "web-chat"
    editor = open_page(browser, srv, room, "edit")
    viewer = open_page(browser, srv, room, "view")
    editor.evaluate(POST_LINES, 20)
    # the server keeps the newest lines in the document and lets the rest go to its store
    viewer.wait_for_function("window.__inhabit.doc.getArray('messages').length <= 8", timeout=10000)
    editor.wait_for_function("window.__inhabit.doc.getArray('messages').length <= 8", timeout=10000)
    editor.wait_for_function("[...document.querySelectorAll('[data-testid=message-text]')].every((e) => e.textContent !== 'line 0')",
                             timeout=10000)  # the panel follows the document on its next frame
    assert texts(editor)[-1] == "line 19" and "line 0" not in texts(editor)
    editor.locator("[data-testid=show-older]").click()
    editor.wait_for_function("[...document.querySelectorAll('[data-testid=message-text]')].some((e) => e.textContent === 'line 0')",
                             timeout=10000)
    shown = texts(editor)
    assert shown == [f"line {i}" for i in range(20)], shown  # older lines above the document's, in order
    # a view link has no "Clear chat"; an editor's page has one
    viewer.wait_for_selector("#readonly-banner", state="visible", timeout=10000)
    assert not viewer.locator("[data-testid=chat-clear]").is_visible()
    clear = editor.locator("[data-testid=chat-clear]")
    clear.wait_for(state="visible", timeout=10000)
    editor.on("dialog", lambda dialog: dialog.accept())
    clear.click()
    for page in (editor, viewer):
        page.wait_for_function("document.querySelectorAll('[data-testid=message]').length === 0", timeout=10000)
    editor.screenshot(path=str(ARTIFACTS / "web-chat-cleared.png"))
    editor.close()
    viewer.close()


def test_a_line_past_the_chat_rate_goes_with_a_notice(server_factory: Any, browser: Any) -> None:
    srv = server_factory(chat_bytes_per_minute=1024, **FAST)
    page = open_page(browser, srv, "web-chat-rate", "edit")
    box = page.locator("[data-testid=prompt-input]")
    box.fill("short hello")
    box.press("Enter")
    page.wait_for_selector("[data-testid=message-text]:has-text('short hello')", timeout=10000)
    box.fill("y" * 2000)  # more than the link's minute's worth
    box.press("Enter")
    notice = page.locator("[data-testid=chat-notice]")
    notice.wait_for(timeout=10000)
    assert "faster than this room allows" in notice.inner_text()
    page.wait_for_function("document.querySelectorAll('[data-testid=message]').length === 1", timeout=10000)
    assert texts(page) == ["short hello"]
    assert not page.errors  # type: ignore[attr-defined]
    page.close()
