"""Outcomes reach the model (issue 21): a prompt in a room with behaviours starts with a short,
bounded block naming each behaviour, its status and how it last went; and an install run's
strokes carry the behaviour's id, as its firings' do.

End to end through a real server, the agent peer and the real `anthropic` client against the
scripted Messages-API server; the block's bounds are checked on `agent.hosting.outcomes` itself.
"""

from __future__ import annotations

import pytest

from agent.behaviours.model import Behaviour, FiringSummary
from agent.contract.events import Installer
from agent.hosting.outcomes import LINE_CHARS, SHOWN, outcomes
from canvas import Message, Stroke

from support.agent_helpers import connect, post_prompt, wait_chat, wait_run
from support.behaviour_helpers import install_script, wait_behaviour
from support.model_server import ModelServer

GAME_JS = r"""
// Draws a frame when installed; the first stroke after that ends the game in a draw.
if (event.type === 'install') canvas.draw({points: [[10, 10], [60, 10], [60, 60]], color: '#1e1e1e', width: 3});
else { canvas.say('Game over: a draw'); behaviour.stop('game over: draw'); }
({type: event.type})
"""


@pytest.fixture
def model_server(shared_model_server: ModelServer) -> ModelServer:
    """One scripted model server for the module (scripts are per room), which `agent_server` uses."""
    return shared_model_server


async def test_the_first_request_says_which_behaviours_exist_and_how_they_went(agent_server, model_server):
    room = "outcomes"
    server = agent_server  # the module's: this test only needs rooms of its own
    alice = await connect(server, room, "alice")
    try:
        model_server.script(room, install_script(GAME_JS, ["stroke"], "tictactoe", reply="Your move."))
        r = await post_prompt(server, room, "@agent let's play")
        install = await wait_run(server, room, r.json()["run"])
        assert install["status"] == "done" and len(install["strokes"]) == 1, install
        b = await wait_behaviour(server, room, lambda x: x["name"] == "tictactoe")
        # the install run's strokes carry the behaviour, as its firings' do
        await alice.wait_for(lambda doc: doc.stroke(install["strokes"][0]) is not None, 10)
        drawn = alice.doc.stroke(install["strokes"][0])
        assert drawn is not None and drawn.behaviour == b["id"] and drawn.run == install["id"]

        alice.doc.add_strokes([Stroke(id="x1", points=[100, 100, 0.5, 140, 140, 0.5], author="alice")])
        await wait_behaviour(server, room, lambda x: x["status"] == "stopped" and x["firings"] == 1)

        # a chat prompt (an editor's) and a viewer's HTTP prompt: both are told
        model_server.script(room, [{"text": "It ended in a draw."}])
        alice.doc.post(Message(author="alice", text="@agent how did it go?"))
        await wait_chat(alice, lambda m: m.kind == "agent" and m.text == "It ended in a draw.", 20)
        r = await post_prompt(server, room, "@agent who won?", role="view")
        await wait_run(server, room, r.json()["run"])
        asked = [q["body"]["messages"][0]["content"] for q in model_server.requests_for(room)[-2:]]
        for first in asked:
            block = first.split("\n\n", 1)[1]
            assert block.startswith("Behaviours in this room"), first
            line = block.splitlines()[1]
            assert line.startswith(f"- tictactoe ({b['id']}, on stroke): stopped — game over: draw; 1 firing; last: a stroke "), line
            assert line.endswith(", ok, said 1"), line
        assert asked[0].startswith("alice asks: how did it go?")

        # chat hygiene: lines about runs carry the run and never name it
        about_runs = [m for m in alice.doc.messages() if m.run]
        assert about_runs and not [m.text for m in alice.doc.messages() if "(run " in m.text or "run-" in m.text]
    finally:
        await alice.close()


def test_the_block_is_bounded():
    installer = Installer(id="tok-1", label="Carol")
    last = FiringSummary(id="f", type="every", t=0, ok=False, error="TypeError: " + "x" * 500, drawn=3)
    many = [Behaviour(room="r", name=f"b{i}" + "n" * 100, on=["stroke", "message"], code="", installer=installer, status="failed",
                      reason="it failed 3 times in a row: " + "y" * 500, firings=i, last=last, updated=i) for i in range(SHOWN + 3)]
    text = outcomes(many, now=3_600_000)
    lines = text.splitlines()
    assert len(lines) == 1 + SHOWN + 1 and lines[-1] == "- … and 3 more, changed longer ago"
    assert all(len(line) <= LINE_CHARS for line in lines[1:])
    assert lines[1].startswith(f"- b{SHOWN + 2}")  # the most recently changed first
    assert "failed — it failed 3 times in a row" in lines[1] and "; 12 firings; last: an every 1 h ago, failed: TypeError" in lines[1]
    assert outcomes([]) == ""
