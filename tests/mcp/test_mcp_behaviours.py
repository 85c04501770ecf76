"""MCP clients leave behaviours: an edit token's `execute` with `on` installs one, as the room's own
agent installs them (the token's link is the installer; the same bounds, cards and routes), and it
fires on people's strokes with no further call. A view token cannot install. The SDK's own client,
a real server, a headless person."""

from __future__ import annotations

import httpx
import pytest

from canvas import Stroke

from support.agent_helpers import connect, wait_chat
from support.behaviour_helpers import behaviours, wait_behaviour
from support.live_server import LiveServer
from support.mcp_helpers import mcp_client, payload


@pytest.fixture
def server(shared_server: LiveServer) -> LiveServer:
    return shared_server


UNDERLINE = r"""
// Underlines each new stroke; counts them in its state.
for (const s of event.strokes ?? []) canvas.draw({points: [[s.bbox.x0, s.bbox.y1 + 10], [s.bbox.x1, s.bbox.y1 + 10]], color: '#d12d2d'});
state.seen = (state.seen ?? 0) + (event.strokes?.length ?? 0);
({type: event.type, seen: state.seen})
"""


async def test_an_edit_tokens_execute_with_on_installs_a_behaviour_that_fires_on_a_persons_stroke(server):
    room = "mcp-installs"
    token = server.access().mint(room, "edit", name="Mia")
    alice = await connect(server, room, "alice")
    try:
        async with mcp_client(server, room, name="claude-code", token=token) as c:
            tools = {t.name: t for t in (await c.list_tools()).tools}
            schema = tools["execute"].input_schema
            assert {"code", "on", "name", "anyone", "rehearse"} <= set(schema["properties"]) and schema["required"] == ["code"]
            assert "installer" in tools["execute"].description and "behaviour" in tools["execute"].description
            assert "Behaviours: programs that keep running" in payload(await c.call_tool("search", {"query": "behaviour on trigger"}))
            out = await c.call_tool("execute", {"code": UNDERLINE, "on": ["stroke"], "name": "underline"})
            result = payload(out)
            assert not out.is_error and result["ok"], result
            assert result["behaviour"]["name"] == "underline" and result["behaviour"]["status"] == "active"
            assert result["result"] == {"type": "install", "seen": 0}
            # listed, with the MCP token's identity as its installer; its run is the client's
            b = await wait_behaviour(server, room, lambda x: x["name"] == "underline")
            assert (b["installer"], b["status"], b["on"], b["run"]) == ("Mia", "active", ["stroke"], result["run"])
            run = httpx.get(f"{server.http}/rooms/{room}/runs/{result['run']}", params={"token": server.token(room, "view")}).json()
            assert (run["source"], run["author"], run["status"], run["code"]) == ("mcp", "claude-code", "done", [UNDERLINE])
            line = await wait_chat(alice, lambda m: m.run == result["run"])
            assert "underline" in line.text and line.author == "claude-code"
            # it fires on a person's stroke, with no call of the client's
            alice.doc.add_strokes([Stroke(id="s1", points=[100, 100, 0.5, 200, 120, 0.5], author="alice")])
            await alice.wait_for(lambda: any(s.behaviour == b["id"] for s in alice.doc.strokes()), 20)
            drawn = next(s for s in alice.doc.strokes() if s.behaviour == b["id"])
            assert abs(drawn.xy()[0][1] - 130) < 1
            b = await wait_behaviour(server, room, lambda x: x["firings"] >= 1 and x["state"].get("seen") == 1)
            # the same name replaces it; bad triggers say how to give them
            bad = await c.call_tool("execute", {"code": UNDERLINE, "on": ["nonsense"], "name": "underline"})
            assert bad.is_error and "on must be a list of triggers" in payload(bad)
            bad_rehearsal = await c.call_tool("execute", {"code": UNDERLINE, "on": ["stroke"], "rehearse": [{"type": "stroke", "strokes": []}]})
            assert bad_rehearsal.is_error and "rehearse[0]" in str(payload(bad_rehearsal)), payload(bad_rehearsal)
            # a rehearsal runs the program on made-up strokes against a copy of the room: nothing installed or drawn
            before = sorted(alice.doc.stroke_ids())
            rehearsal = await c.call_tool("execute", {"code": UNDERLINE, "on": ["stroke"], "name": "underline-try", "rehearse": [
                {"type": "stroke", "strokes": [{"points": [[10, 200], [60, 200]]}]}, {"type": "stroke", "strokes": [{"points": [[0, 300], [40, 320]]}]}]})
            tried = payload(rehearsal)
            assert not rehearsal.is_error and tried["ok"] and tried["rehearsal"]["firings"] == 3, tried  # install + 2
            assert [len(f.get("drawn", [])) for f in tried["firings"]] == [0, 1, 1] and tried["state"] == {"seen": 2}, tried
            assert abs(tried["firings"][1]["drawn"][0]["bbox"]["y0"] - 210) < 5, tried
            assert sorted(alice.doc.stroke_ids()) == before
            assert [x["name"] for x in behaviours(server, room)] == ["underline"]
        # people pause and remove it on its card (the routes), as any behaviour
        r = httpx.post(f"{server.http}/rooms/{room}/behaviours/{b['id']}/pause", params={"token": server.token(room, "edit")})
        assert r.status_code == 200 and r.json()["status"] == "paused"
        r = httpx.delete(f"{server.http}/rooms/{room}/behaviours/{b['id']}", params={"token": server.token(room, "edit")})
        assert r.status_code == 200 and not behaviours(server, room)
    finally:
        await alice.close()


async def test_a_view_tokens_execute_with_on_is_refused_and_installs_nothing(server):
    room = "mcp-view-installs"
    async with mcp_client(server, room, role="view", name="reader") as c:
        tools = {t.name: t for t in (await c.list_tools()).tools}
        assert "on" not in tools["execute"].input_schema["properties"]
        out = await c.call_tool("execute", {"code": "canvas.strokes().length", "on": ["stroke"], "name": "sneaky"})
        assert out.is_error and "cannot install behaviours" in payload(out) and "edit token" in payload(out)
    assert behaviours(server, room) == []
