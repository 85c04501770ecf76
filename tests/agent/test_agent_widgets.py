"""Widgets and the hosted agent (issue 22), end to end: a real server, its agent peer, the real
`anthropic` client against the scripted Messages-API server. Malformed widgets from any peer
never break the agent's read of the room, and undoing its run removes the widgets the run made
along with its strokes."""

from __future__ import annotations

import json

import httpx
import pytest

from canvas import Widget

from support.agent_helpers import board_strokes, connect, post_prompt, wait_run
from support.model_server import ModelServer

pytestmark = pytest.mark.timeout(120)

READ_AND_DRAW = """
const s = canvas.strokes();
const id = canvas.draw({points: [[0, 0], [40, 40]], color: '#d12d2d'});
({n: s.length, authors: [...new Set(s.map(k => k.author))], id})
"""


@pytest.fixture
def model_server(shared_model_server: ModelServer) -> ModelServer:
    return shared_model_server


async def test_malformed_widgets_do_not_break_a_run_and_undo_removes_the_runs_widgets(agent_server, model_server) -> None:
    room = "widgets-agent"
    model_server.script(room, [{"tool": "execute", "input": {"code": READ_AND_DRAW}}, {"text": "Done."}])
    alice = await connect(agent_server, room, "alice")
    try:
        alice.doc.add_strokes(board_strokes())
        m = alice.doc.widgets_map  # what a careless peer may write: skipped by every reader
        m["bad.type"] = {"id": "bad.type", "type": "slider", "x": 1, "y": 1, "text": "?"}
        m["bad.value"] = [1, 2, 3]
        m["bad.size"] = {"id": "bad.size", "type": "text", "x": 0, "y": 0, "text": "huge", "size": -4}
        alice.doc.put_widgets([Widget(id="note", type="text", x=0, y=-50, text="a person's note")])
        await alice.flush()
        r = await post_prompt(agent_server, room, "@agent draw a line")
        assert r.status_code == 202, r.text
        run = await wait_run(agent_server, room, r.json()["run"])
        assert run["status"] == "done" and len(run["strokes"]) == 1, run
        drawn = run["strokes"][0]
        told = model_server.requests_for(room)[-1]["body"]["messages"][-1]["content"]  # the execute's result, as the model got it
        assert '"n":6' in json.dumps(told).replace("\\", "").replace(" ", ""), told
        await alice.wait_for(lambda d: d.stroke(drawn) is not None, 10)
        # the run's widget (its own API makes these in the product; here it carries the run's id)
        alice.doc.put_widgets([Widget(id="run.score", type="text", x=0, y=0, text="X 0 – O 0", kind="agent", run=run["id"])])
        await alice.flush()
        async with httpx.AsyncClient(timeout=30) as http:
            undo = await http.post(f"{agent_server.http}/rooms/{room}/runs/{run['id']}/undo", params={"token": agent_server.token(room, "edit")})
        assert undo.status_code == 200 and sorted(undo.json()["erased"]) == sorted([drawn, "run.score"]), undo.text
        await alice.wait_for(lambda d: d.stroke(drawn) is None and d.widget("run.score") is None, 10)
        assert [w.id for w in alice.doc.widgets()] == ["note"] and len(alice.doc.strokes()) == len(board_strokes())
    finally:
        await alice.close()
