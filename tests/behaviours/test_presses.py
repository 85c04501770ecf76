"""Buttons that behaviours answer (issue 22, "Agents" and "Presses"), end to end: a real server, the
real agent peer and sandbox, the real `anthropic` client against the scripted Messages-API server,
headless people, and presses over HTTP with real links.

The scenario: a scripted model installs a scoreboard behaviour (test data, generic: on every
person's stroke it draws an O beside it and counts both in a text "X n – O m"; on install it places
the scoreboard and a "New game" button; a press on the button erases every stroke, the person's
too, and resets the score). Then the bounds: who may press, paused behaviours, rates, floods.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from canvas import Stroke, Widget, new_id

from support.agent_helpers import connect, post_prompt, scripted_env, wait_run
from support.behaviour_helpers import get, install_script, post, wait_behaviour
from support.model_server import ModelServer

SCOREBOARD_JS = r"""
// A scoreboard and a "New game" button; an O beside every stroke a person draws.
if (!state.score) {
  state.score = canvas.text({x: -400, y: -300, text: 'X 0 – O 0', size: 28});
  state.newGame = canvas.button({x: -400, y: -240, label: 'New game', anyone: !!state.anyone});
  state.x = 0; state.o = 0;
}
if (event.type === 'press' && event.widget.id === state.newGame) {
  for (const s of canvas.strokes()) canvas.erase(s.id);
  state.x = 0; state.o = 0;
} else if (event.type === 'stroke') {
  for (const s of event.strokes ?? []) {
    if (s.kind !== 'human') continue;
    state.x += 1;
    const cx = s.bbox.x1 + 40, cy = (s.bbox.y0 + s.bbox.y1) / 2, ring = [];
    for (let i = 0; i <= 24; i++) { const a = 2 * Math.PI * i / 24; ring.push([cx + 15 * Math.cos(a), cy + 15 * Math.sin(a)]); }
    canvas.draw({points: ring, color: '#d12d2d'});
    state.o += 1;
  }
}
canvas.update(state.score, {text: `X ${state.x} – O ${state.o}`});
({x: state.x, o: state.o})
"""

ANYONE_JS = "state.anyone = true;\n" + SCOREBOARD_JS


@pytest.fixture
def model_server(shared_model_server: ModelServer) -> ModelServer:
    return shared_model_server


def stroke_at(x: float, y: float, author: str = "alice") -> Stroke:
    return Stroke(id=new_id("h"), points=[x, y, 0.5, x + 30, y + 30, 0.5, x + 60, y, 0.5], author=author)


def score(doc: Any) -> str | None:
    return next((w.text for w in doc.widgets() if w.type == "text" and w.text.startswith("X ")), None)


def button(doc: Any) -> Widget | None:
    return next((w for w in doc.widgets() if w.type == "button"), None)


async def press(server: Any, room: str, widget: str, token: str) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.post(f"{server.http}/rooms/{room}/widgets/{widget}/press", headers={"Authorization": f"Bearer {token}"}, timeout=30)


async def install(server: Any, model_server: ModelServer, room: str, code: str = SCOREBOARD_JS, name: str = "scoreboard") -> tuple[dict, dict]:
    model_server.script(room, install_script(code, ["stroke", "press"], name, "Scoreboard's up."))
    r = await post_prompt(server, room, "@agent keep score, and give us a New game button")
    assert r.status_code == 202, r.text
    run = await wait_run(server, room, r.json()["run"])
    assert run["status"] == "done", run
    return run, await wait_behaviour(server, room, lambda b: b["name"] == name)


def metric(server: Any, name: str) -> float:
    text = httpx.get(f"{server.http}/metrics", timeout=10).text
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " "))


async def test_a_scoreboard_and_a_new_game_button(agent_server, model_server):
    room, server = "score", agent_server
    run, b = await install(server, model_server, room)
    alice = await connect(server, room, "alice")
    bob = await connect(server, room, "bob", role="view")
    try:
        await bob.wait_for(lambda: score(bob.doc) == "X 0 – O 0" and button(bob.doc) is not None, 10)
        btn = button(bob.doc)
        assert btn is not None and btn.text == "New game" and btn.behaviour == b["id"] and not btn.anyone and btn.kind == "agent"
        assert sorted(run["widgets"]) == sorted(w.id for w in bob.doc.widgets())  # the run record lists what it placed

        for n in (1, 2):  # a person plays; the behaviour answers and keeps score
            alice.doc.add_strokes([stroke_at(100 * n, 0)])
            await bob.wait_for(lambda doc, n=n: score(doc) == f"X {n} – O {n}", 15)
        assert len([s for s in bob.doc.strokes() if s.behaviour == b["id"]]) == 2

        # a viewer may not press it (it was not made with anyone: true); a text is not a button; no such widget
        before = metric(server, "inhabit_presses_total")
        r = await press(server, room, btn.id, server.token(room, "view"))
        assert r.status_code == 403 and "edit links" in r.json()["error"], r.text
        text_id = next(w.id for w in bob.doc.widgets() if w.type == "text")
        r = await press(server, room, text_id, server.token(room, "edit"))
        assert r.status_code == 409 and "not a button" in r.json()["error"]
        assert (await press(server, room, "nope", server.token(room, "edit"))).status_code == 404
        assert (await press(server, room, btn.id, "garbage")).status_code == 401

        # an editor's press: New game erases every mark, the person's too, and resets the score
        r = await press(server, room, btn.id, server.token(room, "edit"))
        assert r.status_code == 202 and r.json() == {"ok": True}, r.text
        await bob.wait_for(lambda: not bob.doc.strokes() and score(bob.doc) == "X 0 – O 0", 15)
        assert button(bob.doc) is not None  # the button stays
        detail = get(server, f"/rooms/{room}/behaviours/{b['id']}").json()
        fired = next(f for f in detail["firings"] if f["event"]["type"] == "press")  # the firing record shows the press
        assert fired["ok"] and fired["grant"] == "write" and len(fired["writes"]["erased"]) == 4
        assert fired["event"]["widget"] == {"id": btn.id, "type": "button", "text": "New game", "x": btn.x, "y": btn.y}
        assert fired["event"]["actor"]["role"] == "edit" and fired["event"]["actor"]["kind"] == "human"
        assert metric(server, "inhabit_presses_total") - before == 5
        assert metric(server, "inhabit_presses_refused_total") >= 4

        # play starts again
        alice.doc.add_strokes([stroke_at(0, 200)])
        await bob.wait_for(lambda: score(bob.doc) == "X 1 – O 1", 15)

        # paused: a press answers 409 and says why; removed: 409 too
        assert post(server, f"/rooms/{room}/behaviours/{b['id']}/pause", room=room).status_code == 200
        r = await press(server, room, btn.id, server.token(room, "edit"))
        assert r.status_code == 409 and "paused" in r.json()["error"], r.text
        assert httpx.delete(f"{server.http}/rooms/{room}/behaviours/{b['id']}", params={"token": server.token(room, "edit")}).status_code == 200
        r = await press(server, room, btn.id, server.token(room, "edit"))
        assert r.status_code == 409 and "removed" in r.json()["error"], r.text
    finally:
        await alice.close()
        await bob.close()


async def test_a_viewer_may_press_a_button_made_for_anyone(agent_server, model_server):
    room, server = "anyone", agent_server
    _, b = await install(server, model_server, room, ANYONE_JS, "open scoreboard")
    alice = await connect(server, room, "alice")
    try:
        await alice.wait_for(lambda: button(alice.doc) is not None, 10)
        btn = button(alice.doc)
        assert btn is not None and btn.anyone
        alice.doc.add_strokes([stroke_at(0, 0)])
        await alice.wait_for(lambda: score(alice.doc) == "X 1 – O 1", 15)
        r = await press(server, room, btn.id, server.token(room, "view"))
        assert r.status_code == 202, r.text
        await alice.wait_for(lambda: not alice.doc.strokes() and score(alice.doc) == "X 0 – O 0", 15)  # with the installer's grant
        detail = get(server, f"/rooms/{room}/behaviours/{b['id']}").json()
        fired = next(f for f in detail["firings"] if f["event"]["type"] == "press")
        assert fired["grant"] == "write" and fired["event"]["actor"]["role"] == "view"  # who pressed, as the server knows them
    finally:
        await alice.close()


async def test_buttons_are_made_by_behaviours_only(agent_server, model_server):
    room, server = "nobutton", agent_server
    model_server.script(room, [{"tool": "execute", "input": {"code": "canvas.text({x: 0, y: 0, text: 'hi'}); canvas.button({x: 0, y: 40, label: 'Go'})"}},
                               {"text": "That did not work."}])
    r = await post_prompt(server, room, "@agent make a Go button")
    run = await wait_run(server, room, r.json()["run"])
    assert any("buttons are made by behaviours" in e and 'on: ["press"' in e for e in run["errors"]), run["errors"]
    reqs = model_server.requests_for(room)
    result = reqs[-1]["body"]["messages"][-1]["content"][0]
    assert result["is_error"] and "buttons are made by behaviours" in result["content"]  # the model is told how
    alice = await connect(server, room, "alice")
    try:
        assert alice.doc.widgets() == []  # the failed run wrote nothing, its text neither
    finally:
        await alice.close()


@pytest.mark.serial
async def test_presses_are_bounded_per_link_and_a_flood_costs_one_firing(server_factory, model_server):
    """A flood of presses from three links: each link is cut off past its rate (429 + Retry-After),
    and the room pays one firing per coalescing window (the behaviour's firing rate), not one per press."""
    room = "flood"
    server = server_factory(env=scripted_env(model_server), presses_per_minute=3, behaviour_firings_per_minute=1)
    _, b = await install(server, model_server, room)
    alice = await connect(server, room, "alice")
    try:
        await alice.wait_for(lambda: button(alice.doc) is not None, 10)
        btn = button(alice.doc)
        assert btn is not None
        links = [server.access().mint(room, "edit", name=f"p{i}") for i in range(3)]
        answers = await asyncio.gather(*(press(server, room, btn.id, t) for t in links for _ in range(3)))
        assert [a.status_code for a in answers] == [202] * 9, [a.text for a in answers]
        r = await press(server, room, btn.id, links[0])
        assert r.status_code == 429 and float(r.headers["Retry-After"]) > 0 and "presses" in r.json()["error"]
        await wait_behaviour(server, room, lambda x: x["firings"] >= 1)
        await asyncio.sleep(1.0)  # what else the flood could have fired, it would have by now
        detail = get(server, f"/rooms/{room}/behaviours/{b['id']}").json()
        presses = [f for f in detail["firings"] if f["event"]["type"] == "press"]
        assert len(presses) == 1, presses  # the rest wait, merged, for the next window
        assert metric(server, "inhabit_presses_total") == 10 and metric(server, "inhabit_presses_refused_total") == 1
    finally:
        await alice.close()


async def test_widgets_are_bounded_per_run_and_per_room():
    """The canvas API's widget half, in process: quotas per run, the room's cap, text length,
    update and erase, and one transaction for the whole run."""
    from agent.contract.canvas import CanvasSession, Quotas
    from agent.sandbox import Sandbox
    from canvas import CanvasDoc
    from canvas.schema import MAX_WIDGETS

    sandbox = Sandbox(workers=1)
    try:
        doc = CanvasDoc()
        session = CanvasSession.of(doc, author="agent", run_id="r1", grant="write", quotas=Quotas(max_widgets=3))
        rec = await sandbox.run("for (let i = 0; i < 4; i++) canvas.text({x: i, y: 0, text: `t${i}`})", bindings=session.bindings())
        assert not rec.ok and rec.error is not None and "at most 3 texts and buttons per run" in rec.error.message
        rec = await sandbox.run("canvas.text({x: 0, y: 0, text: 'x'.repeat(2001)})", bindings=session.bindings())
        assert not rec.ok and rec.error is not None and "at most 2000 characters" in rec.error.message

        full = CanvasDoc()
        full.put_widgets([Widget(id=f"w{i}", type="text", x=0, y=i, text="n") for i in range(MAX_WIDGETS)])
        session = CanvasSession.of(full, author="agent", run_id="r2", grant="write", behaviour="bh-1")
        rec = await sandbox.run("canvas.erase('w0'); canvas.button({x: 0, y: 0, label: 'Go'}); canvas.text({x: 0, y: 0, text: 'one too many'})",
                                bindings=session.bindings())
        assert not rec.ok and rec.error is not None and f"holds {MAX_WIDGETS} texts and buttons" in rec.error.message

        session = CanvasSession.of(full, author="agent", run_id="r3", grant="write", behaviour="bh-1")
        changes: list[Any] = []
        full.doc.observe(lambda event: changes.append(event))
        rec = await sandbox.run("canvas.erase('w0'); const b = canvas.button({x: 5, y: 5, label: 'Go', anyone: true});"
                                "[canvas.update('w1', {text: 'changed', x: 9}), canvas.update('nope', {text: 'x'}), b]", bindings=session.bindings())
        assert rec.ok, rec.error
        session.commit(full)
        assert len(changes) == 1  # the run's writes are one transaction
        made = full.widget(rec.result[2])
        assert made is not None and made.behaviour == "bh-1" and made.run == "r3" and made.anyone and session.widgets.made == [made.id]
        w1 = full.widget("w1")
        assert rec.result[:2] == [True, False] and full.widget("w0") is None and w1 is not None and (w1.text, w1.x) == ("changed", 9)
    finally:
        sandbox.close()
