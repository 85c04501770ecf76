"""The hosted agent's sight (issue 21): a third tool, `view`, beside `search` and `execute`, whose
tool result is an image of the room drawn by the server's renderer, with the box it shows; and
the chat lines about a run carry the run, with no run id in their text.

End to end: a real server, the real agent peer, the real `anthropic` client against the scripted
Messages-API server; the picture the model receives is decoded with Pillow and its pixels checked.
"""

from __future__ import annotations

import base64
import io
import json

import pytest
from PIL import Image

from agent.contract.render import BACKGROUND
from agent.runs.viewing import FORGOTTEN, forget_old_pictures
from canvas import Stroke

from support.agent_helpers import connect, post_prompt, scripted_env, wait_run
from support.model_server import ModelServer

BACK = Image.new("RGB", (1, 1), BACKGROUND).getpixel((0, 0))


@pytest.fixture
def model_server(shared_model_server: ModelServer) -> ModelServer:
    """One scripted model server for the module (scripts are per room), which `agent_server` uses."""
    return shared_model_server


def dark(pixel: tuple[int, ...]) -> bool:
    return sum(pixel[:3]) < 200


def background(pixel: tuple[int, ...]) -> bool:
    return all(abs(a - b) <= 3 for a, b in zip(pixel[:3], BACK, strict=True))


async def test_the_model_views_the_room_and_sees_the_strokes_where_they_are(agent_server, model_server):
    room = "sight"
    server = agent_server  # the module's: this test only needs rooms of its own
    model_server.script(room, [{"tool": "view", "input": {"box": {"x0": 0, "y0": 0, "x1": 400, "y1": 200}, "size": 400}},
                               {"text": "A bar across the middle."}])
    alice = await connect(server, room, "alice")
    try:
        # a dark horizontal bar from (100, 100) to (300, 100), 8 units wide, and a short vertical one at x = 350
        alice.doc.add_strokes([Stroke(id="bar", points=[100, 100, 0.5, 200, 100, 0.5, 300, 100, 0.5], color="#1e1e1e", width=8, author="alice"),
                               Stroke(id="post", points=[350, 40, 0.5, 350, 80, 0.5], color="#1e1e1e", width=6, author="alice")])
        r = await post_prompt(server, room, "@agent what is there?")
        run = await wait_run(server, room, r.json()["run"])
        assert run["status"] == "done" and run["reply"] == "A bar across the middle.", run

        first, second = (q["body"] for q in model_server.requests_for(room))
        assert [t["name"] for t in first["tools"]] == ["search", "execute", "view"]
        view_tool = first["tools"][2]
        assert set(view_tool["input_schema"]["properties"]) == {"box", "size"} and "$ref" not in json.dumps(view_tool)
        system = first["system"]
        assert system.startswith('You are "agent", an AI peer in "sight"')
        assert "view(box?, size?)" in system and "check a drawing by eye" in system and "raw points" in system

        result = second["messages"][-1]["content"][0]
        assert result["type"] == "tool_result" and not result.get("is_error"), result
        image, about = result["content"]
        assert image["type"] == "image" and image["source"]["media_type"] == "image/png"
        about = json.loads(about["text"])
        assert about["box"] == {"x0": 0, "y0": 0, "x1": 400, "y1": 200} and about["units_per_px"] == 1.0 and about["strokes"] == 2
        picture = Image.open(io.BytesIO(base64.b64decode(image["source"]["data"]))).convert("RGB")
        assert picture.size == (400, 200)
        for x in (110, 150, 200, 250, 290):  # along the bar
            assert dark(picture.getpixel((x, 100))), x
        assert dark(picture.getpixel((350, 60)))  # the post
        for at in ((200, 80), (200, 120), (50, 100), (380, 100), (350, 150), (20, 20), (390, 190)):  # around them
            assert background(picture.getpixel(at)), (at, picture.getpixel(at))

        # chat hygiene: every line about the run carries it, none names it in its text
        lines = [m for m in alice.doc.messages() if m.run == run["id"]]
        assert len(lines) == 3 and lines[1].text == "On it: “what is there?”" and lines[2].text == "A bar across the middle.", [m.text for m in lines]
        assert not [m.text for m in alice.doc.messages() if "(run " in m.text or run["id"] in m.text]
    finally:
        await alice.close()


async def test_a_bad_view_is_a_tool_error_and_views_count_against_the_runs_tool_calls(server_factory, model_server):
    room = "sight-bad"
    server = server_factory(env=scripted_env(model_server), agent_tool_calls=2)
    model_server.script(room, [{"tool": "view", "input": {"box": {"x0": 10, "y0": 0, "x1": 5, "y1": 10}}},
                               {"tool": "view", "input": {"size": 5}},
                               {"tool": "view", "input": {}},
                               {"text": "unreachable"}])
    r = await post_prompt(server, room, "@agent look", role="view")  # a viewer's run may look too
    run = await wait_run(server, room, r.json()["run"])
    assert run["grant"] == "read" and run["status"] == "failed" and "more than 2 tool calls" in run["reply"], run
    reqs = [q["body"] for q in model_server.requests_for(room)]
    assert len(reqs) == 3
    box_error = reqs[1]["messages"][-1]["content"][0]
    size_error = reqs[2]["messages"][-1]["content"][0]
    assert box_error["is_error"] and "x0 < x1" in box_error["content"]
    assert size_error["is_error"] and "size" in size_error["content"] and "Example" in size_error["content"]
    assert sum("malformed tool input" in e for e in run["errors"]) == 2


def test_only_the_last_pictures_stay_in_the_conversation():
    def looked(n: int) -> dict:
        return {"role": "user", "content": [{"type": "tool_result", "tool_use_id": f"t{n}", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": str(n)}}, {"type": "text", "text": "{}"}]}]}

    messages = [{"role": "user", "content": "look"}] + [looked(n) for n in range(5)]
    forget_old_pictures(messages, keep=3)
    kinds = [m["content"][0]["content"][0] for m in messages[1:]]
    assert [k.get("text") for k in kinds[:2]] == [FORGOTTEN, FORGOTTEN]
    assert [k["source"]["data"] for k in kinds[2:]] == ["2", "3", "4"]
