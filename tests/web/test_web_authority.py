"""Browser + authority (issue 18): a behaviour installed with `anyone: true` says so on its card,
so people can see that a viewer's prompt or joining may make it draw and erase; one installed
without it does not, and its firing caused by a viewer is shown as read-only, by a viewer."""

from __future__ import annotations

import time
from typing import Any

import httpx

from support.agent_helpers import scripted_env
from support.behaviour_helpers import install_script
from support.pages import open_page

CARD = "[data-testid=behaviour]"
NOTE_JS = "if (event.type === 'message' && event.message.text.includes('note')) canvas.say('noted'); 1"


def prompt(server: Any, room: str, text: str, role: str = "edit") -> None:
    """An HTTP prompt, waited for until its run ends."""
    r = httpx.post(f"{server.http}/rooms/{room}/prompts", json={"text": text}, params={"token": server.token(room, role)}, timeout=10)
    run = r.json()["run"]
    deadline = time.monotonic() + 30
    while httpx.get(f"{server.http}/rooms/{room}/runs/{run}", params={"token": server.token(room, "view")}).json()["status"] not in ("done", "failed"):
        assert time.monotonic() < deadline, f"run {run} did not end"
        time.sleep(0.1)


def test_the_card_shows_who_may_trigger_a_behaviour_with_write(server_factory: Any, model_server: Any, browser: Any) -> None:
    room = "webauthority"
    server = server_factory(env=scripted_env(model_server))
    for name, anyone in (("guarded", False), ("open door", True)):
        turns = install_script(NOTE_JS, ["message"], name)
        turns[0]["input"]["anyone"] = anyone
        model_server.script(room, turns)
        prompt(server, room, f"@agent install {name}")
    model_server.script(room, [{"text": "Nothing to do."}])
    prompt(server, room, "@agent note this", role="view")  # a viewer's prompt, echoed in the chat, fires both
    page = open_page(browser, server, room)
    page.locator(CARD).nth(1).wait_for(timeout=15000)
    guarded, open_door = page.locator(CARD).filter(has_text="guarded"), page.locator(CARD).filter(has_text="open door")
    assert open_door.locator("[data-testid=behaviour-anyone]").is_visible()
    assert "Anyone" in open_door.locator("[data-testid=behaviour-anyone]").inner_text()
    assert not guarded.locator("[data-testid=behaviour-anyone]").is_visible()
    guarded.locator("[data-testid=behaviour-firings-list] summary").click()
    guarded.locator("[data-testid=firing]").filter(has_text="(viewer) (read-only)").first.wait_for(timeout=10000)
    assert page.errors == []  # type: ignore[attr-defined]
