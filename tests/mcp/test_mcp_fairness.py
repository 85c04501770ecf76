"""MCP sessions are shared fairly, and only this server's names reach them (issue 18).

The reproductions: one `'*'` view link opened 4 sessions in each of 16 rooms, each with a GET
stream it never read, and took every session of the server (503 for everyone else, still after
`--mcp-idle-s`); two view links of one room filled it; `/rooms/NAME/mcp` answered any `Host`
(DNS rebinding). Real server, bare HTTP for the hostile client, the SDK's client for the others."""

from __future__ import annotations

import asyncio
import re
from contextlib import AsyncExitStack

import httpx

from support.agent_helpers import connect
from support.mcp_helpers import HANDSHAKE, RawSession, agents, mcp_client, mcp_url


async def _open_unread_stream(client: httpx.AsyncClient, stack: AsyncExitStack, session: RawSession) -> int:
    """A GET stream of `session`, opened and never read; its status."""
    headers = session.headers(Accept="text/event-stream")
    headers.pop("Content-Type")
    response = await stack.enter_async_context(client.stream("GET", session.url, headers=headers))
    return response.status_code


def _gauge(server, name: str) -> float:
    text = httpx.get(f"{server.http}/metrics").text
    return float(re.search(rf"^{name} (\S+)$", text, re.M).group(1))


async def test_one_star_view_link_cannot_deny_mcp_to_others(server_factory):
    server = server_factory()  # the defaults: 64 sessions, 8 per room, 4 per link in a room, 8 per link
    star = server.token("*", "view")
    opened: list[RawSession] = []
    refusals: list[str] = []
    async with AsyncExitStack() as stack:
        client = await stack.enter_async_context(httpx.AsyncClient(timeout=30))
        for n in range(16):  # the attack: 4 sessions in each of 16 rooms, every one with an unread stream
            for _ in range(4):
                s = RawSession(server, f"fair-{n}", star, name="hog")
                r = await asyncio.to_thread(s.initialize)
                if r.status_code == 200:
                    assert await _open_unread_stream(client, stack, s) == 200
                    opened.append(s)
                else:
                    assert r.status_code == 429, r.text
                    refusals.append(r.json()["error"]["message"])
        assert len(opened) == 8, len(opened)  # --mcp-link-sessions (and at most a quarter of --mcp-sessions)
        assert "across rooms, the most one link may" in refusals[-1]
        assert _gauge(server, "inhabit_mcp_sessions") == 8
        # everyone else still gets in: an edit link where the hog sits, a view link elsewhere, the SDK's own client
        assert RawSession(server, "fair-0", server.token("fair-0", "edit")).initialize().status_code == 200
        assert RawSession(server, "fair-9", server.token("fair-9", "view")).initialize().status_code == 200
        async with mcp_client(server, "fair-1", name="bystander") as c:
            assert not (await c.call_tool("search", {"query": "draw"})).is_error


async def test_two_view_links_cannot_fill_a_room(server):
    room = "viewers-share"
    first, second = server.token(room, "view"), server.access().mint(room, "view")
    assert all(RawSession(server, room, first).initialize().status_code == 200 for _ in range(4))
    refused = RawSession(server, room, second).initialize()
    assert refused.status_code == 429 and "kept for edit links" in refused.json()["error"]["message"]
    assert all(RawSession(server, room, server.token(room, "edit")).initialize().status_code == 200 for _ in range(4))


async def test_an_unread_stream_does_not_keep_a_session_past_its_idle_bound(server_factory):
    server = server_factory(mcp_idle_s=2, mcp_sessions=1)  # one session in all: the SDK must forget it too
    room = "unread"
    watcher = await connect(server, room, "watcher")
    try:
        async with AsyncExitStack() as stack:
            client = await stack.enter_async_context(httpx.AsyncClient(timeout=30))
            s = RawSession(server, room, server.token(room, "edit"), name="never-reads")
            assert s.initialize().status_code == 200
            assert await _open_unread_stream(client, stack, s) == 200
            await watcher.wait_for(lambda: "never-reads" in agents(watcher), 10)
            await watcher.wait_for(lambda: "never-reads" not in agents(watcher), 20)  # its stream still open, unread
            assert s.request("tools/list").status_code == 404
            assert _gauge(server, "inhabit_mcp_sessions") == 0
            # its place is free at once (the SDK's table too: --mcp-sessions 1 would answer 503 otherwise)
            assert RawSession(server, room, server.token(room, "edit")).initialize().status_code == 200
    finally:
        await watcher.close()


async def test_mcp_answers_only_this_servers_names(server):
    room = "rebinding"
    token = server.token(room, "edit")
    body = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": HANDSHAKE, "capabilities": {}, "clientInfo": {"name": "rebound", "version": "1"}}}
    base = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json", "MCP-Protocol-Version": HANDSHAKE}
    for headers in ({"Authorization": f"Bearer {token}"}, {}):  # with or without a token: the Host is checked first
        foreign = httpx.post(mcp_url(server, room), json=body, headers={**base, **headers, "Host": f"evil.example:{server.port}"})
        assert foreign.status_code == 421, foreign.text
    origin = httpx.post(mcp_url(server, room), json=body,
                        headers={**base, "Authorization": f"Bearer {token}", "Origin": "http://evil.example"})
    assert origin.status_code == 403, origin.text
    for host in (f"localhost:{server.port}", f"127.0.0.1:{server.port}"):  # this server's own names
        ok = httpx.post(mcp_url(server, room), json=body, headers={**base, "Authorization": f"Bearer {token}", "Host": host})
        assert ok.status_code == 200, ok.text
