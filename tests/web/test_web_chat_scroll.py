"""The chat follows new lines (issue 21, chat hygiene): a reader at the bottom of the chat stays
there as lines arrive and as what is shown grows later (a run card filling in, the panel resized);
a reader who scrolled up to read is left where they are. Real `inhabit serve`, headless Chromium."""

from __future__ import annotations

from typing import Any

import pytest

from support.pages import open_page

pytestmark = pytest.mark.timeout(120)

POST = """([from, n]) => {
  const msgs = window.__inhabit.doc.getArray('messages')
  for (let i = from; i < from + n; i++) msgs.push([{ id: 'l' + i, author: 'Ann', kind: 'human', text: 'line ' + i, t: Date.now() }])
}"""
AT_BOTTOM = "(() => { const l = document.getElementById('messages'); return l.scrollHeight - l.scrollTop - l.clientHeight < 2 })()"
LAST_IN_VIEW = """(() => {
  const l = document.getElementById('messages'), all = l.querySelectorAll('[data-testid=message]')
  const last = all[all.length - 1], a = l.getBoundingClientRect(), b = last.getBoundingClientRect()
  return b.bottom <= a.bottom + 1 && b.top >= a.top - 1 })()"""

SCROLL_TO = """(where) => new Promise((done) => {  // the reader scrolls; resolved once the page has seen it
  const l = document.getElementById('messages')
  l.addEventListener('scroll', () => done(null), { once: true })
  l.scrollTop = where === 'top' ? 0 : l.scrollHeight
})"""


def shows_last(page: Any, text: str) -> None:
    page.wait_for_function(f"[...document.querySelectorAll('[data-testid=message-text]')].at(-1)?.textContent === {text!r}", timeout=10000)
    page.wait_for_function(f"{AT_BOTTOM} && {LAST_IN_VIEW}", timeout=5000)


def test_new_lines_stay_in_view_at_the_bottom_and_a_reader_above_is_left_alone(server: Any, browser: Any) -> None:
    page = open_page(browser, server, "web-chat-scroll", "edit")
    page.evaluate(POST, [0, 40])  # more than the panel holds
    shows_last(page, "line 39")
    page.evaluate(POST, [40, 1])
    shows_last(page, "line 40")
    # what is shown grows later, with no new line: the last message's card fills in, the panel shrinks
    page.evaluate("""() => { const all = document.querySelectorAll('[data-testid=message]')
      const grow = document.createElement('div'); grow.style.height = '180px'; all[all.length - 1].append(grow) }""")
    page.wait_for_function(f"{AT_BOTTOM}", timeout=5000)
    page.set_viewport_size({"width": 1280, "height": 560})
    page.wait_for_function(f"{AT_BOTTOM}", timeout=5000)
    # a reader who scrolled up stays where they are while lines arrive
    page.evaluate(SCROLL_TO, "top")
    page.evaluate(POST, [41, 3])
    page.wait_for_function("[...document.querySelectorAll('[data-testid=message-text]')].at(-1)?.textContent === 'line 43'", timeout=10000)
    assert page.evaluate("document.getElementById('messages').scrollTop") == 0
    # back at the bottom, it follows again
    page.evaluate(SCROLL_TO, "bottom")
    page.evaluate(POST, [44, 1])
    shows_last(page, "line 44")
    assert not page.errors, page.errors  # type: ignore[attr-defined]
    page.close()
