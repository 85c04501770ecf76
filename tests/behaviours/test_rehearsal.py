"""Rehearsal (issue 21): `execute` with `on` and `rehearse` runs a behaviour on made-up events
against a scratch copy of the room and shows every firing, writing and installing nothing.

Against a real server, its agent peer and the real `anthropic` client talking to the scripted
Messages-API server; the engine's rules (a viewer's event, stop, erasures) in process with the
real sandbox."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from agent.behaviours.rehearsal import Bounds, rehearse
from agent.contract.events import BadInstall, parse_rehearsal, parse_triggers
from agent.sandbox import Sandbox, Share
from canvas import Stroke
from common.actor import Actor

from support.agent_helpers import connect, post_prompt, wait_run
from support.behaviour_helpers import behaviours
from support.model_server import ModelServer

DOTS_JS = r"""
// joins each new dot to the previous one; counts what it sees of the (scratch) room
for (const d of (event.strokes ?? []).filter(s => s.points.length <= 2)) {
  if (state.last) canvas.draw({points: [state.last, d.points[0]], color: '#2d6cd1'});
  state.last = d.points[0];
  state.dots = (state.dots ?? 0) + 1;
}
({strokes: canvas.strokes().length, by: event.by})
"""
THROWS_JS = "state.n = 1;\nif (event.type === 'message') {\n  throw new Error('cannot answer ' + event.message.text);\n}\n1"


@pytest.fixture
def model_server(shared_model_server: ModelServer) -> ModelServer:
    return shared_model_server


def dot(x: float, y: float) -> dict[str, Any]:
    return {"type": "stroke", "by": "sam", "strokes": [{"points": [[x, y]]}]}


def tool_results(model_server: ModelServer, room: str) -> list[tuple[str, bool]]:
    """The tool results the model was sent in the room's latest request: (content, is_error)."""
    body = model_server.requests_for(room)[-1]["body"]
    return [(b["content"], bool(b.get("is_error"))) for m in body["messages"] if m["role"] == "user" and isinstance(m["content"], list)
            for b in m["content"] if b.get("type") == "tool_result"]


async def rehearsed(server: Any, model_server: ModelServer, room: str, execute: dict[str, Any]) -> tuple[str, bool, dict]:
    """An editor's prompt whose (scripted) model executes `execute` once; the tool result and the run."""
    model_server.script(room, [{"tool": "execute", "input": execute}, {"text": "Rehearsed."}])
    r = await post_prompt(server, room, "@agent try it first")
    assert r.status_code == 202, r.text
    run = await wait_run(server, room, r.json()["run"])
    (content, is_error), = tool_results(model_server, room)
    return content, is_error, run


def runs_of(server: Any, room: str) -> list[dict]:
    r = httpx.get(f"{server.http}/rooms/{room}/runs", params={"token": server.token(room, "view")}, timeout=10)
    r.raise_for_status()
    return r.json()["runs"]


async def test_a_behaviour_rehearsed_on_three_strokes_shows_each_firing_and_changes_nothing(agent_server, model_server):
    room, server = "rehearse-dots", agent_server
    alice = await connect(server, room, "alice")
    try:
        alice.doc.add_strokes([Stroke(id="h1", points=[0, 0, 0.5, 50, 50, 0.5], author="alice")])
        content, is_error, run = await rehearsed(server, model_server, room, {
            "code": DOTS_JS, "on": ["stroke"], "name": "dots", "rehearse": [dot(100, 100), dot(200, 120), dot(300, 150)]})
        out = json.loads(content)
        assert not is_error and out["ok"], out
        firings = out["firings"]
        assert [f["event"]["type"] for f in firings] == ["install", "stroke", "stroke", "stroke"]
        assert all(f["ok"] for f in firings) and firings[1]["event"]["by"] == "sam" and len(firings[1]["event"]["strokes"]) == 1
        assert "drawn" not in firings[0] and "drawn" not in firings[1]  # the first dot has nothing to join
        assert [d["bbox"] for d in firings[2]["drawn"]] == [{"x0": 100, "y0": 100, "x1": 200, "y1": 120}]
        assert [d["bbox"] for d in firings[3]["drawn"]] == [{"x0": 200, "y0": 120, "x1": 300, "y1": 150}]
        # a scratch copy of the room: its stroke, the made-up dots so far, the earlier firing's line and its own
        assert [f["result"]["strokes"] for f in firings] == [1, 2, 3 + 1, 4 + 2]
        assert firings[1]["state"] == {"last": [100, 100], "dots": 1}
        assert out["state"] == firings[3]["state"] == {"last": [300, 150], "dots": 3}
        assert out["room"] == {"strokes_before": 1, "strokes_after": 1 + 3 + 2}
        assert "nothing was installed" in out["next"]
        # nothing reached the room, nothing was installed, and the run's record of it wrote nothing
        assert run["status"] == "done" and run["strokes"] == [] and run["erased"] == [] and run["code"] == [DOTS_JS]
        assert behaviours(server, room) == []
        assert [r["id"] for r in runs_of(server, room)] == [run["id"]]
        bob = await connect(server, room, "bob", role="view")
        try:
            await bob.wait_for(lambda doc: doc.strokes() and any(m.run == run["id"] and "Rehearsed" in m.text for m in doc.messages()), 10)
            assert [s.id for s in bob.doc.strokes()] == ["h1"]
            assert not any(m.behaviour for m in bob.doc.messages())
        finally:
            await bob.close()
    finally:
        await alice.close()


async def test_a_rehearsal_that_throws_says_where(agent_server, model_server):
    room, server = "rehearse-throws", agent_server
    content, is_error, run = await rehearsed(server, model_server, room, {
        "code": THROWS_JS, "on": ["message"], "name": "answers", "rehearse": [{"type": "message", "message": {"text": "why?"}, "by": "sam"}]})
    out = json.loads(content)
    assert is_error and not out["ok"]
    install, fired = out["firings"]
    assert install["ok"] and install["state"] == {"n": 1}
    assert not fired["ok"] and fired["event"]["message"] == "why?" and "drawn" not in fired
    assert fired["error"]["message"] == "Error: cannot answer why?" and fired["error"]["line"] == 3 and fired["error"]["column"] > 0
    assert any("rehearsal: Error: cannot answer why?" in e for e in run["errors"])
    assert behaviours(server, room) == []


async def test_a_bad_made_up_event_gets_a_clear_error(agent_server, model_server):
    room, server = "rehearse-bad", agent_server
    content, is_error, run = await rehearsed(server, model_server, room, {
        "code": DOTS_JS, "on": ["stroke"], "rehearse": [dot(1, 2), {"type": "stroke", "strokes": [{"points": "here"}]}]})
    assert is_error and content.startswith("rehearse[1] ") and "strokes.0.points" in content and "made-up event" in content
    assert run["code"] == [] and behaviours(server, room) == []  # nothing ran


# ---- the engine in process -------------------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox():
    sb = Sandbox(workers=1)
    yield sb
    sb.close()


def test_made_up_events_are_checked_against_their_shapes_and_the_triggers():
    on = parse_triggers(["stroke", "message"])
    assert [e.type for e in parse_rehearsal([dot(1, 2), {"type": "message", "message": {"text": "hi"}}], on)] == ["stroke", "message"]
    for bad, why in (([], "must be a list"), ([{"type": "strok"}], r"rehearse\[0\].*'strok'"), ([{"type": "join"}], "never fires on it"),
                     ([dot(1, 2), {"type": "stroke", "strokes": [{"points": [[1]]}]}], r"rehearse\[1\].*\[x, y\]"),
                     ([dot(1, 2)] * 21, "at most 20")):
        with pytest.raises(BadInstall, match=why):
            parse_rehearsal(bad, on)


async def test_a_viewers_event_is_read_only_erasures_apply_and_stop_ends_it(sandbox):
    code = ("if (event.type === 'erase') state.gone = canvas.strokes().length;\n"
            "if (event.type === 'message') { canvas.say('heard ' + event.message.text); if (event.message.text === 'bye') behaviour.stop('done'); }\n1")
    on = parse_triggers(["erase", "message"])
    events = parse_rehearsal([{"type": "erase", "erased": ["h1"]}, {"type": "message", "message": {"text": "hi"}, "role": "view"},
                              {"type": "message", "message": {"text": "bye"}}, {"type": "message", "message": {"text": "late"}}], on)
    room = {"h1": Stroke(id="h1", points=[0, 0, 0.5, 5, 5, 0.5]), "h2": Stroke(id="h2", points=[9, 9, 0.5, 5, 5, 0.5])}
    out = await rehearse(sandbox, code, name="t", triggers=on, events=events, strokes=room, author="agent",
                         installer=Actor(id="tok", name="ed", role="edit"), grant="write", bounds=Bounds(None, None, 4096, 3),
                         share=Share("r", "agent@r"))
    install, erased, viewer, bye, late = out["firings"]
    assert erased["ok"] and erased["state"] == {"gone": 1} and "h1" in room  # the copy lost h1; the room given did not
    assert not viewer["ok"] and viewer["grant"] == "read" and "viewer" in viewer["read_only"]  # canvas.say is not there for a viewer
    assert bye["ok"] and bye["said"] == ["heard bye"] and bye["stopped"] == "done"
    assert late["ran"] is False and "stopped itself" in late["why"] and not out["ok"]
