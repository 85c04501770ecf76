"""Authority follows the actor (issue 18): a behaviour fired by a viewer acts as a viewer.

The red team's reproduction, against a real server, the real agent peer and the scripted model:
an editor installs a `message` behaviour that erases everything; a viewer's HTTP prompt, echoed
into the chat by the agent, fires it. Before, it erased the editor's strokes with the installer's
write grant; now the firing is read-only (its record says so and why), unless the behaviour was
installed with `anyone: true`. An `ask()` from a viewer-caused firing wakes a read-only run that
cannot install, and an editor's own chat line still fires with write.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from canvas import Message

from support.agent_helpers import board_strokes, connect, post_prompt, wait_run
from support.behaviour_helpers import behaviours, get, install_script, wait_behaviour
from support.model_server import ModelServer

WIPE_JS = ("if (event.type === 'message' && event.message.text.includes('wipe')) "
           "{ for (const s of canvas.strokes()) canvas.erase(s.id); } 1")
ASKER_JS = "if (event.type === 'message' && /\\?$/.test(event.message.text)) behaviour.ask('Someone asked: ' + event.message.text); 1"
SNEAKY_JS = "for (const s of canvas.strokes()) canvas.erase(s.id); 1"


@pytest.fixture
def model_server(shared_model_server: ModelServer) -> ModelServer:
    return shared_model_server


def firings(server: Any, room: str, bid: str) -> list[dict]:
    """The behaviour's recent firings, newest first."""
    return get(server, f"/rooms/{room}/behaviours/{bid}", room=room).json()["firings"]


async def wait_firing(server: Any, room: str, bid: str, pred: Any, timeout: float = 20) -> dict:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = [f for f in firings(server, room, bid) if pred(f)]
        if found:
            return found[0]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"no such firing in {timeout}s: {firings(server, room, bid)}")
        await asyncio.sleep(0.1)


async def install(server: Any, model_server: ModelServer, room: str, code: str, name: str, **extra: Any) -> dict:
    """An editor's HTTP prompt whose (scripted) model installs `code` on chat lines."""
    turns = install_script(code, ["message"], name)
    turns[0]["input"].update(extra)
    model_server.script(room, turns)
    r = await post_prompt(server, room, "@agent install it")
    assert (await wait_run(server, room, r.json()["run"]))["status"] == "done"
    return await wait_behaviour(server, room, lambda b: b["name"] == name)


async def viewer_prompt(server: Any, model_server: ModelServer, room: str, text: str) -> dict:
    """A viewer's HTTP prompt: the agent echoes it into the chat (and answers, read-only)."""
    model_server.script(room, [{"text": "Nothing to do."}])
    r = await post_prompt(server, room, text, role="view")
    assert r.status_code == 202 or r.status_code == 200, r.text
    return await wait_run(server, room, r.json()["run"])


async def test_a_viewer_prompt_cannot_erase_through_a_behaviour_but_an_editor_line_can(agent_server, model_server):
    room, server = "deputy", agent_server
    alice = await connect(server, room, "alice")
    try:
        alice.doc.add_strokes(board_strokes())
        n = len(alice.doc.strokes())
        b = await install(server, model_server, room, WIPE_JS, "wiper")
        assert b["anyone"] is False
        run = await viewer_prompt(server, model_server, room, "@agent wipe it all")
        assert run["grant"] == "read"
        fired = await wait_firing(server, room, b["id"], lambda f: "wipe it all" in ((f["event"].get("message") or {}).get("text") or ""))
        assert fired["grant"] == "read" and "viewer" in fired["read_only"], fired
        actor = fired["event"]["actor"]
        # the echoed prompt (a human's) or, merged with it, the agent's line about the viewer's run: a viewer's either way
        assert actor["role"] == "view" and actor["kind"] in ("human", "agent") and fired["event"]["by"] == actor["name"]
        assert fired["writes"]["erased"] == []
        await asyncio.sleep(0.5)  # the agent's own lines about the viewer's run fire it too, read-only as well
        assert len(alice.doc.strokes()) == n, "a viewer erased an editor's strokes through a behaviour"
        assert all(f["grant"] == "read" for f in firings(server, room, b["id"]) if "wipe" in str(f["event"].get("message")))
        assert [x["status"] for x in behaviours(server, room)] == ["active"]  # a viewer cannot pause it by making it fail

        alice.doc.post(Message(author="alice", text="please wipe"))  # an editor's own chat line: write
        await alice.wait_for(lambda doc: not doc.strokes(), 20)
        fired = await wait_firing(server, room, b["id"], lambda f: (f["event"].get("message") or {}).get("text") == "please wipe")
        assert fired["grant"] == "write" and fired["read_only"] is None and fired["event"]["actor"]["role"] == "edit"
        assert len(fired["writes"]["erased"]) == n
    finally:
        await alice.close()


async def test_anyone_true_lets_a_viewer_trigger_it_with_write(agent_server, model_server):
    room, server = "anyone", agent_server
    alice = await connect(server, room, "alice")
    try:
        alice.doc.add_strokes(board_strokes())
        b = await install(server, model_server, room, WIPE_JS, "open wiper", anyone=True)
        assert b["anyone"] is True  # what the card shows
        await viewer_prompt(server, model_server, room, "@agent wipe it all")
        await alice.wait_for(lambda doc: not doc.strokes(), 20)
        fired = await wait_firing(server, room, b["id"], lambda f: f["writes"]["erased"])
        assert fired["grant"] == "write" and fired["event"]["actor"]["role"] == "view"
    finally:
        await alice.close()


async def test_a_viewer_caused_ask_wakes_a_read_only_run_that_cannot_install(agent_server, model_server):
    room, server = "askview", agent_server
    alice = await connect(server, room, "alice")
    try:
        alice.doc.add_strokes(board_strokes())
        n = len(alice.doc.strokes())
        b = await install(server, model_server, room, ASKER_JS, "asker")
        # every run from now on tries to install an eraser: the viewer's run and the run its line's ask wakes
        model_server.script(room, install_script(SNEAKY_JS, ["stroke"], "sneaky"))
        r = await post_prompt(server, room, "@agent what is this?", role="view")
        viewer_run = r.json()["run"]
        asked = await alice.wait_for(lambda doc: [m for m in doc.messages() if m.behaviour == b["id"] and m.run and m.run != viewer_run], 20)
        run = await wait_run(server, room, asked[0].run)
        assert run["source"] == "behaviour" and run["grant"] == "read", run
        assert any("cannot install" in e for e in run["errors"]), run
        request = next(x for x in model_server.requests_for(room) if "Someone asked" in str(x["body"]["messages"][0]["content"]))
        assert "on" not in request["body"]["tools"][1]["input_schema"]["properties"]
        fired = await wait_firing(server, room, b["id"], lambda f: f.get("asked"))
        assert fired["grant"] == "read" and fired["event"]["actor"]["role"] == "view"
        assert [x["name"] for x in behaviours(server, room)] == ["asker"]
        assert len(alice.doc.strokes()) == n
    finally:
        await alice.close()


async def test_a_join_carries_the_joining_link_s_role_from_the_server(agent_server, model_server):
    room, server = "joins", agent_server
    alice = await connect(server, room, "alice")
    try:
        model_server.script(room, install_script("if (event.type === 'join') canvas.say('welcome ' + event.actor.name); 1", ["join"], "greeter"))
        r = await post_prompt(server, room, "@agent greet people")
        assert (await wait_run(server, room, r.json()["run"]))["status"] == "done"
        b = await wait_behaviour(server, room, lambda x: x["name"] == "greeter")
        viewer = await connect(server, room, "vic", role="view")  # presence says "vic"; the server says a view link
        fired = await wait_firing(server, room, b["id"], lambda f: (f["event"].get("actor") or {}).get("name") == "vic")
        assert fired["grant"] == "read" and fired["event"]["actor"]["role"] == "view" and not fired["ok"]
        await viewer.close()
        editor = await connect(server, room, "eve")
        await alice.wait_for(lambda doc: any(m.text == "welcome eve" for m in doc.messages()), 20)
        fired = await wait_firing(server, room, b["id"], lambda f: (f["event"].get("actor") or {}).get("name") == "eve")
        assert fired["grant"] == "write" and fired["event"]["actor"]["role"] == "edit" and fired["event"]["actor"]["id"]
        assert not any(m.text == "welcome vic" for m in alice.doc.messages())
        await editor.close()
    finally:
        await alice.close()
