"""The scripted task suite (issue 21): four canvas tasks, each judged on the room's final state.

Tic-tac-toe to the end on a rotated hand-drawn board, connect-the-dots across a server restart and
mirror are done by the model through the real `anthropic` client against the scripted
Messages-API server; circling the closed shapes is done by the official MCP client. The scenarios
and their JavaScript are in tests/support/tasks.py (bench/tokens.py runs the same ones); here each
verdict is asserted, with what the task costs the model where this tree changed it: a section
the conversation already holds comes back as one line.
"""

from __future__ import annotations

import json

import pytest

from agent.contract.reference import SHOWN

from support.agent_helpers import scripted_env
from support.live_server import LiveServer
from support.model_server import ModelServer
from support.tasks import circle_closed_shapes, connect_the_dots, mirror, tictactoe


@pytest.fixture
def model_server(shared_model_server: ModelServer) -> ModelServer:
    return shared_model_server


def tool_results(model_server: ModelServer, room: str) -> list[str]:
    """The tool results the model was sent in its last request for `room`, in order."""
    messages = model_server.requests_for(room)[-1]["body"]["messages"]
    return [b["content"] for m in messages if m["role"] == "user" and isinstance(m["content"], list) for b in m["content"]]


async def test_tictactoe_to_the_end_on_a_rotated_board(agent_server: LiveServer, model_server: ModelServer) -> None:
    result = await tictactoe(agent_server, model_server)
    assert result.problems == [], result
    assert result.requests == 4  # two searches, the install, the reply: no model call per move (a problem otherwise)


async def test_connect_the_dots_across_a_restart(server_factory, model_server: ModelServer) -> None:
    server = server_factory(env=scripted_env(model_server))
    result = await connect_the_dots(server, model_server)
    assert result.problems == [] and result.detail == {"joined": 3, "of": 3}, result
    searches = tool_results(model_server, "task-dots")[:3]
    assert "## Behaviours: programs that keep running\n" in searches[0]
    assert f"## Behaviours: programs that keep running{SHOWN}" in searches[1]  # the guide once, then one line
    assert all("A behaviour is a program" not in s for s in searches[1:])


async def test_mirror_across_x_500(agent_server: LiveServer, model_server: ModelServer) -> None:
    result = await mirror(agent_server, model_server)
    assert result.problems == [] and result.detail == {"mirrored": 2, "of": 2}, result
    first, again, draw = tool_results(model_server, "task-mirror")[:3]
    assert first.startswith("## canvas.strokes\n") and "## Behaviours" not in first  # the function's docs, not the guide
    assert again == f"## canvas.strokes{SHOWN}"
    assert draw.startswith("## canvas.draw\n")
    assert json.loads(tool_results(model_server, "task-mirror")[3])["ok"]


async def test_circle_the_closed_shapes_over_mcp(agent_server: LiveServer) -> None:
    result = await circle_closed_shapes(agent_server)
    assert result.problems == [] and result.detail["circled"] == 3 and result.detail["result"] == {"closed": 3}, result
    strokes, draw, again, say = result.detail["searches"]  # the session's searches: each section once
    assert strokes.startswith("## canvas.strokes\n") and draw.startswith("## canvas.draw\n") and say.startswith("## canvas.say\n")
    assert again.startswith(f"## canvas.strokes{SHOWN}")
