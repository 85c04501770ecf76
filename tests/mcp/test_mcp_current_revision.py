"""The current MCP revision, 2026-07-28 (stateless: no initialize, no session), served beside the
handshake era: the SDK's own client pinned to that revision lists the tools, draws, and its link
shows in the room's presence as one agent peer, which leaves after `--mcp-idle-s` without a
request. Bounds are the link's, as for sessions (they count together)."""

from __future__ import annotations

import httpx
import pytest

from support.agent_helpers import connect
from support.live_server import LiveServer
from support.mcp_helpers import agents, mcp_client, mcp_url, payload

MODERN = "2026-07-28"


@pytest.fixture
def server(shared_server: LiveServer) -> LiveServer:
    return shared_server


async def test_a_client_speaking_only_2026_07_28_lists_draws_and_is_present(server):
    room = "modern"
    watcher = await connect(server, room, "watcher", role="view")
    try:
        async with mcp_client(server, room, name="modern-client", mode=MODERN) as c:
            assert c.protocol_version == MODERN
            tools = {t.name: t for t in (await c.list_tools()).tools}
            assert list(tools) == ["search", "execute", "view"] and "on" in tools["execute"].input_schema["properties"]
            await watcher.wait_for(lambda: "modern-client" in agents(watcher), 10)  # its link joined the room
            out = await c.call_tool("execute", {"code": "canvas.draw({points: [[10, 10], [90, 40]], color: '#1971c2'})"})
            result = payload(out)
            assert not out.is_error and result["ok"], result
            [sid] = result["written"]["drawn"]
            await watcher.wait_for(lambda: watcher.doc.stroke(sid) is not None, 10)
            stroke = watcher.doc.stroke(sid)
            assert (stroke.author, stroke.kind, stroke.run) == ("modern-client", "agent", result["run"])
            again = payload(await c.call_tool("execute", {"code": "canvas.strokes().length"}))
            assert again["ok"] and again["result"] == 1  # its next call reads its own writes
            assert len([s for s in agents(watcher) if s == "modern-client"]) == 1
            runs = httpx.get(f"{server.http}/rooms/{room}/runs", params={"token": server.token(room, "view")}).json()["runs"]
            assert {(r["id"], r["source"], r["author"]) for r in runs} >= {(result["run"], "mcp", "modern-client")}
            viewed = await c.call_tool("view", {"box": {"x0": 0, "y0": 0, "x1": 100, "y1": 50}, "size": 100})
            assert not viewed.is_error
        # the same client over the handshake era works beside it (its own place: a session)
        async with mcp_client(server, room, name="legacy-client") as c:
            assert c.protocol_version != MODERN
            assert payload(await c.call_tool("execute", {"code": "canvas.strokes().length"}))["result"] == 1
    finally:
        await watcher.close()


async def test_a_2026_07_28_link_leaves_when_idle_and_counts_against_the_bounds(server_factory):
    server = server_factory(mcp_idle_s=1, mcp_token_sessions=1)
    room = "modern-idle"
    watcher = await connect(server, room, "watcher")
    token = server.token(room, "edit")
    try:
        async with mcp_client(server, room, name="quiet", mode=MODERN, token=token) as c:
            await c.list_tools()
            await watcher.wait_for(lambda: "quiet" in agents(watcher), 10)
            # the link holds its one place in the room: a session of the same token is refused while it lasts
            init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "second", "version": "1"}}}
            r = httpx.post(mcp_url(server, room), json=init, headers={
                "Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"})
            assert r.status_code == 429 and "one token may open" in r.json()["error"]["message"]
            await watcher.wait_for(lambda: "quiet" not in agents(watcher), 15)  # no request for idle_s: it left
            # its next request is served again, by a new place
            assert not (await c.call_tool("search", {"query": "draw"})).is_error
    finally:
        await watcher.close()
