"""`canvas.people()` (issue 21): who is in the room now, from presence, with the server's word on
each connection's kind and role, in an execute and in a behaviour's firing (read at its time).

A real server, its agent peer, the real `anthropic` client against the scripted Messages-API
server, the official MCP client, and headless websocket clients as people (an edit link and a view link)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from support.agent_helpers import connect, post_prompt, wait_run
from support.behaviour_helpers import install_script, wait_behaviour
from support.mcp_helpers import mcp_client, payload
from support.model_server import ModelServer

GREETER_JS = ("if (event.type === 'join') canvas.say('here: ' + canvas.people().map(p => `${p.name}/${p.kind}/${p.role}`).join(' '));\n1")


@pytest.fixture
def model_server(shared_model_server: ModelServer) -> ModelServer:
    return shared_model_server


def first_tool_result(model_server: ModelServer, room: str) -> dict[str, Any]:
    body = model_server.requests_for(room)[-1]["body"]
    results = [b for m in body["messages"] if m["role"] == "user" and isinstance(m["content"], list) for b in m["content"]
               if b.get("type") == "tool_result"]
    return json.loads(results[0]["content"])


async def test_people_lists_a_person_a_viewer_and_the_agent_with_kinds_and_roles(agent_server, model_server):
    room, server = "people", agent_server
    alice = await connect(server, room, "alice")
    vic = await connect(server, room, "vic", role="view")
    try:
        alice.set_awareness({"cursor": {"x": 12.5, "y": 34}})
        await vic.wait_for(lambda *_: any((s.get("cursor") or {}).get("x") == 12.5 for s in vic.awareness().values()), 10)
        model_server.script(room, [{"tool": "execute", "input": {"code": "canvas.people()"}}, {"text": "Three of us."}])
        r = await post_prompt(server, room, "@agent who is here?")
        run = await wait_run(server, room, r.json()["run"])
        assert run["status"] == "done", run
        out = first_tool_result(model_server, room)
        assert out["ok"], out
        me, *others = out["result"]
        assert me["you"] and me["kind"] == "agent" and me["role"] == "edit" and me["name"] == "agent"
        by_name = {p["name"]: p for p in others}
        assert set(by_name) == {"alice", "vic"}
        assert by_name["alice"]["kind"] == "human" and by_name["alice"]["role"] == "edit" and by_name["alice"]["cursor"] == {"x": 12.5, "y": 34}
        assert by_name["vic"]["kind"] == "human" and by_name["vic"]["role"] == "view" and not by_name["vic"]["you"]
        assert by_name["alice"]["id"] and by_name["vic"]["id"] and by_name["alice"]["id"] != by_name["vic"]["id"]  # their links, as the server knows them

        # a firing reads presence when it runs: a behaviour on joins sees the one who just came
        model_server.script(room, install_script(GREETER_JS, ["join"], "greeter"))
        r = await post_prompt(server, room, "@agent greet whoever joins")
        assert (await wait_run(server, room, r.json()["run"]))["status"] == "done"
        await wait_behaviour(server, room, lambda b: b["name"] == "greeter")
        eve = await connect(server, room, "eve")
        try:
            line = await alice.wait_for(lambda doc: next((m for m in doc.messages() if m.text.startswith("here:") and "eve" in m.text), None), 20)
            assert set(line.text.removeprefix("here: ").split()) == {"agent/agent/edit", "alice/human/edit", "vic/human/view", "eve/human/edit"}
        finally:
            await eve.close()
    finally:
        await alice.close()
        await vic.close()


async def test_an_mcp_clients_execute_sees_itself_and_the_people(agent_server):
    room, server = "people-mcp", agent_server
    alice = await connect(server, room, "alice")
    try:
        async with mcp_client(server, room, role="view", name="claude-code") as c:
            out = payload(await c.call_tool("execute", {"code": "canvas.people()"}))
            assert out["ok"], out
            me, *others = out["result"]
            assert me == {**me, "name": "claude-code", "kind": "mcp", "role": "view", "you": True}
            assert [(p["name"], p["kind"], p["role"]) for p in others] == [("alice", "human", "edit")]
    finally:
        await alice.close()
