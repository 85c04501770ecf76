"""Browser + behaviours: a prompt typed in the panel installs a behaviour (scripted model); its card
appears in the chat panel and shows its firings as a person draws; a firing is undone from the
card; pause, resume and remove work; a view link sees the card but cannot change it."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from support.agent_helpers import board_strokes, connect, scripted_env
from support.behaviour_helpers import ECHO_JS, behaviours, install_script
from support.pages import ARTIFACTS, open_page

CARD = "[data-testid=behaviour]"


def test_behaviour_card_shows_firings_and_pause_resume_remove_work(server_factory: Any, model_server: Any, browser: Any) -> None:
    room = "webbehaviours"
    model_server.script(room, install_script(ECHO_JS, ["stroke"], "echo", "Underlining what you draw."))
    server = server_factory(env=scripted_env(model_server))
    page = open_page(browser, server, room)
    viewer = open_page(browser, server, room, role="view")
    page.fill("[data-testid=prompt-input]", "@agent underline everything I draw")
    page.click("[data-testid=prompt-send]")
    card = page.locator(CARD)
    card.wait_for(timeout=30000)
    assert card.locator("[data-testid=behaviour-name]").inner_text() == "echo"
    assert card.locator("[data-testid=behaviour-on]").inner_text() == "on stroke"
    page.wait_for_selector(f"{CARD} [data-testid=behaviour-status][data-status=active]")
    bid = card.get_attribute("data-behaviour-id")

    def draw(n: int) -> None:
        """A person draws one stroke from a headless client (in a thread: Playwright's sync API owns this one's loop)."""
        async def go() -> None:
            alice = await connect(server, room, "alice")
            try:
                alice.doc.add_strokes(board_strokes()[n:n + 1])
                await alice.flush()
            finally:
                await alice.close()

        t = threading.Thread(target=asyncio.run, args=(go(),))
        t.start()
        t.join(30)

    draw(0)
    page.wait_for_function("window.__inhabit.strokes().size === 2")  # the stroke and its underline
    card.locator("[data-testid=behaviour-firings]").filter(has_text="1 firing").wait_for(timeout=15000)
    assert "drew 1" in card.locator("[data-testid=behaviour-last]").inner_text()

    # the firing's writes, undone from the card
    card.locator("[data-testid=behaviour-firings-list] summary").click()
    firing = card.locator("[data-testid=firing]").first
    firing.wait_for(timeout=10000)
    with page.expect_response(lambda r: r.url.split("?")[0].endswith("/undo")) as answer:
        firing.locator("[data-testid=firing-undo]").click()
    assert answer.value.status == 200 and len(answer.value.json()["erased"]) == 1
    page.wait_for_function("window.__inhabit.strokes().size === 1")
    firing.locator("[data-testid=firing-undo]").filter(has_text="Undone").wait_for()

    # a viewer sees the card, cannot change it
    vcard = viewer.locator(CARD)
    vcard.wait_for(timeout=15000)
    viewer.wait_for_function("document.querySelector('[data-testid=behaviour-toggle]').disabled")
    assert vcard.locator("[data-testid=behaviour-remove]").is_disabled()

    # pause: it does not fire; resume: it does again
    card.locator("[data-testid=behaviour-toggle]").click()
    page.wait_for_selector(f"{CARD} [data-testid=behaviour-status][data-status=paused]")
    assert card.locator("[data-testid=behaviour-toggle]").inner_text() == "Resume"
    draw(1)
    page.wait_for_function("window.__inhabit.strokes().size === 2")
    page.wait_for_timeout(500)
    assert page.evaluate("window.__inhabit.strokes().size") == 2 and behaviours(server, room)[0]["firings"] == 1
    card.locator("[data-testid=behaviour-toggle]").click()
    page.wait_for_selector(f"{CARD} [data-testid=behaviour-status][data-status=active]")
    draw(2)
    card.locator("[data-testid=behaviour-firings]").filter(has_text="2 firings").wait_for(timeout=15000)
    page.wait_for_function("window.__inhabit.strokes().size === 4")
    page.screenshot(path=str(ARTIFACTS / "web-behaviour-card.png"))

    # remove: the card goes, from every page
    with page.expect_response(lambda r: r.request.method == "DELETE") as answer:
        card.locator("[data-testid=behaviour-remove]").click()
    assert answer.value.status == 200
    page.wait_for_selector(CARD, state="detached", timeout=10000)
    viewer.wait_for_selector(CARD, state="detached", timeout=15000)
    assert behaviours(server, room) == [] and bid
    assert not page.errors and not viewer.errors
