"""MCP end to end: a real server, the official SDK's client over streamable HTTP, headless
peers as the people in the room.

An MCP client is an agent peer: `search` reads the same generated reference as our model,
`execute` runs in the same sandbox with the same grants and lands in one transaction as a run
(listed, undoable), `view` is a PNG of the room, and the client is in presence while its
session lasts."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest

from agent.contract.codemode import TOOLS, Reference

from support.agent_helpers import board_strokes, connect, fingerprint, inhabit, wait_chat, watch_strokes
from support.live_server import LiveServer
from support.mcp_helpers import RawSession, agents, mcp_client, mcp_url, payload, picture


@pytest.fixture
def server(shared_server: LiveServer) -> LiveServer:
    """These tests only need rooms of their own: one server for the module."""
    return shared_server


DRAW = """
const pts = [];
for (let i = 0; i <= 24; i++) { const a = i / 24 * 2 * Math.PI; pts.push([300 + 50 * Math.cos(a), 200 + 50 * Math.sin(a)]); }
const ids = [canvas.draw({points: pts, color: '#d12d2d', width: 5}), canvas.draw({points: [[250, 280], [350, 280]], width: 5})];
({ids, n: canvas.strokes().length})
"""


def runs_of(server, room: str) -> dict[str, dict]:
    r = httpx.get(f"{server.http}/rooms/{room}/runs", params={"token": server.token(room, "view")})
    r.raise_for_status()
    return {run["id"]: run for run in r.json()["runs"]}


async def test_tools_are_code_modes_and_search_returns_declarations(server):
    async with mcp_client(server, "r1") as c:
        assert "y grows DOWNWARDS" in (c.instructions or "") and "view(" in (c.instructions or "")
        tools = {t.name: t for t in (await c.list_tools()).tools}
        assert list(tools) == ["search", "execute", "view"]
        spec = {t["name"]: t for t in TOOLS}
        assert tools["search"].description == spec["search"]["description"]
        assert tools["execute"].description.startswith(spec["execute"]["description"])
        assert tools["execute"].input_schema["required"] == ["code"] and tools["execute"].annotations.read_only_hint is False
        assert set(tools["view"].input_schema["properties"]) == {"box", "size"}
        everything = payload(await c.call_tool("search", {"query": ""}))
        assert Reference("write").declarations in everything and "canvas.draw(" in everything
        draw_docs = payload(await c.call_tool("search", {"query": "draw circle"}))
        assert "## canvas.draw" in draw_docs
        bad = await c.call_tool("search", {"query": 42})
        assert bad.is_error and 'search needs {"query": string}' in payload(bad)


async def test_execute_draws_in_one_transaction_as_a_run_that_can_be_undone(server):
    room = "draw"
    watcher = await connect(server, room, "watcher", role="view")
    events = watch_strokes(watcher)
    try:
        async with mcp_client(server, room, name="claude-code") as c:
            await watcher.wait_for(lambda: "claude-code" in agents(watcher), 10)  # present from the start
            out = await c.call_tool("execute", {"code": DRAW})
            result = payload(out)
            assert not out.is_error and result["ok"] and result["result"]["n"] == 2, result
            ids, run_id = result["result"]["ids"], result["run"]
            assert result["written"]["drawn"] == ids
            await watcher.wait_for(lambda: all(watcher.doc.stroke(i) for i in ids), 10)
            carrying = [e for e in events if set(ids) & set(e)]
            assert len(carrying) == 1 and set(ids) <= set(carrying[0]), carrying  # one transaction
            strokes = [watcher.doc.stroke(i) for i in ids]
            assert all(s.author == "claude-code" and s.kind == "agent" and s.run == run_id for s in strokes)
            # its cursor is where it drew (the centre of what it drew), its colour an agent's
            me = await watcher.wait_for(lambda: (agents(watcher).get("claude-code") or {}).get("cursor") and agents(watcher)["claude-code"], 10)
            assert abs(me["cursor"]["x"] - 300) < 1 and abs(me["cursor"]["y"] - 215) < 1, me
            assert re.fullmatch(r"#[0-9a-f]{6}", me["user"]["color"])
            # the chat announces the run (the page shows its card there)
            line = await wait_chat(watcher, lambda m: m.run == run_id)
            assert line.kind == "agent" and line.author == "claude-code" and "drew 2 strokes" in line.text
            # a run like the built-in agent's
            listed = runs_of(server, room)[run_id]
            assert (listed["source"], listed["author"], listed["grant"], listed["status"]) == ("mcp", "claude-code", "write", "done")
            assert sorted(listed["strokes"]) == sorted(ids)
            full = httpx.get(f"{server.http}/rooms/{room}/runs/{run_id}", params={"token": server.token(room, "view")}).json()
            assert full["code"] == [DRAW] and [k["name"] for k in full["calls"]] == ["canvas.draw", "canvas.draw", "canvas.strokes"]
            # a program that reads only is a run too, but says nothing in the chat
            quiet = payload(await c.call_tool("execute", {"code": "canvas.strokes().map(s => s.author)"}))
            assert quiet["ok"] and quiet["result"] == ["claude-code", "claude-code"] and "written" not in quiet
            assert runs_of(server, room)[quiet["run"]]["strokes"] == []
            assert not [m for m in watcher.doc.messages() if m.run == quiet["run"]]
            # Undo run
            r = httpx.post(f"{server.http}/rooms/{room}/runs/{run_id}/undo", params={"token": server.token(room, "edit")})
            assert r.status_code == 200 and sorted(r.json()["erased"]) == sorted(ids)
            await watcher.wait_for(lambda: not watcher.doc.strokes(), 10)
            assert runs_of(server, room)[run_id]["undone"] is True
        # the client ended its session: its peer left the room
        await watcher.wait_for(lambda: "claude-code" not in agents(watcher), 10)
    finally:
        await watcher.close()


async def test_a_view_tokens_session_cannot_write(server):
    room = "ro"
    alice = await connect(server, room, "alice")
    alice.doc.add_strokes(board_strokes())
    await alice.wait_for(lambda: len(alice.doc.strokes()) == 6)
    try:
        async with mcp_client(server, room, role="view", name="reader") as c:
            await alice.wait_for(lambda: "reader" in agents(alice), 10)  # a viewer is still a peer
            before, chat = fingerprint(alice), len(alice.doc.messages())
            tools = {t.name: t for t in (await c.list_tools()).tools}
            assert tools["execute"].annotations.read_only_hint is True and "read-only" in tools["execute"].description
            assert "canvas.draw" not in payload(await c.call_tool("search", {"query": ""}))
            out = await c.call_tool("execute", {"code": "canvas.draw({points: [[0, 0], [50, 50]]})"})
            result = payload(out)
            assert out.is_error and not result["ok"]
            assert "read-only" in result["error"]["message"] and "Nothing was written" in result["next"], result
            count = payload(await c.call_tool("execute", {"code": "canvas.strokes().length"}))
            assert count["ok"] and count["result"] == 6  # reading works, and its own copy of the room is untouched
            run = runs_of(server, room)[result["run"]]
            assert run["grant"] == "read" and run["status"] == "failed" and run["source"] == "mcp"
            assert fingerprint(alice) == before and len(alice.doc.messages()) == chat
    finally:
        await alice.close()


async def test_tokens_are_checked_and_sessions_bound_to_theirs(server):
    url = mcp_url(server, "r1")
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}
    for token, says in ((None, "missing token"), ("v2.nonsense", "malformed token"), (server.token("other", "edit"), "another room")):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        r = httpx.post(url, json=init, headers=headers)
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer"), r.text
        assert says in r.json()["error"]["message"]
        with pytest.raises(Exception) as refused:  # the SDK client says why too
            async with mcp_client(server, "r1", headers=headers):
                pass
        assert says in repr(refused.value)
    # a session is its opener's: another token (same room, same role) cannot use it, nor another room
    everywhere = server.token("*", "edit")
    s = RawSession(server, "r1", everywhere)
    assert s.initialize().status_code == 200
    assert s.request("tools/list").status_code == 200
    other = RawSession(server, "r1", server.token("r1", "edit"))
    other.id = s.id
    assert other.request("tools/list").status_code == 404
    elsewhere = RawSession(server, "r2", everywhere)
    elsewhere.id = s.id
    assert elsewhere.request("tools/list").status_code == 404
    # a protocol version not served is refused with the versions served (the 2026-07-28 revision among them:
    # tests/mcp/test_mcp_current_revision.py), on which a client picks one
    r = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {}},
                   headers={"Authorization": f"Bearer {everywhere}", "MCP-Protocol-Version": "2099-01-01"})
    supported = r.json()["error"]["data"]["supported"]
    assert r.status_code == 400 and r.json()["error"]["code"] == -32022 and "2025-11-25" in supported and "2026-07-28" in supported


HOSTILE = [
    ("while (true) {}", "timeout"),
    ("function f(n) { return f(n + 1) + 1 } f(0)", "stack"),
    ("for (;;) console.log('x'.repeat(1000))", "output"),
    ("const a = []; while (true) a.push(new Float64Array(1 << 20))", "memory"),
    ("fetch('http://127.0.0.1/')", "js"),
    ("require('fs').readFileSync('/etc/passwd')", "js"),
    ("canvas.draw({points: [[1, 1], [50, 50]]}); throw new Error('after drawing')", "js"),
    ("for (let i = 0; i < 1000; i++) canvas.draw({points: [[i, 0], [i, 10]]})", "capability"),
    ("canvas.draw({points: [[1e9, 0], [0, 0]]})", "capability"),
    ("let = = 1", "syntax"),
]


@pytest.mark.timeout(180)
async def test_hostile_programs_are_contained(server):
    room = "hostile"
    watcher = await connect(server, room, "watcher")
    try:
        async with mcp_client(server, room) as c:
            for code, kind in HOSTILE:
                out = await c.call_tool("execute", {"code": code})
                result = payload(out)
                assert out.is_error and result["error"]["kind"] == kind, (code, result)
                assert result["next"].startswith("Nothing was written"), result
            assert watcher.doc.strokes() == []
            assert payload(await c.call_tool("execute", {"code": "canvas.draw({points: [[0, 0], [9, 9]]}); 6 * 7"}))["result"] == 42
        assert httpx.get(f"{server.http}/healthz").status_code == 200
    finally:
        await watcher.close()


async def test_view_renders_the_rooms_strokes_where_they_are(server):
    from canvas import Stroke

    room = "look"
    alice = await connect(server, room, "alice")
    red = Stroke(id="red", points=[100, 100, 0.5, 300, 100, 0.5], color="#e03131", width=12)
    blue = Stroke(id="blue", points=[400, 50, 0.5, 400, 250, 0.5], color="#1971c2", width=12)
    alice.doc.add_strokes([red, blue])
    await alice.flush()
    try:
        async with mcp_client(server, room) as c:
            out = await c.call_tool("view", {"box": {"x0": 0, "y0": 0, "x1": 500, "y1": 300}, "size": 500})
            img, about = picture(out), payload(out)
            assert img.size == (500, 300) and about["units_per_px"] == 1 and about["strokes"] == 2
            near = lambda px, rgb: all(abs(a - b) < 40 for a, b in zip(px, rgb, strict=True))  # noqa: E731
            for x in (110, 200, 290):
                assert near(img.getpixel((x, 100)), (0xE0, 0x31, 0x31)), (x, img.getpixel((x, 100)))
            for y in (60, 150, 240):
                assert near(img.getpixel((400, y)), (0x19, 0x71, 0xC2)), (y, img.getpixel((400, y)))
            for at in ((200, 130), (200, 70), (350, 150), (450, 280), (20, 20)):
                assert near(img.getpixel(at), (0xFB, 0xFB, 0xFC)), (at, img.getpixel(at))
            # the whole room (the default): the image says which box it shows; map back and look
            out = await c.call_tool("view", {})
            img, about = picture(out), payload(out)
            b, k = about["box"], about["units_per_px"]
            assert max(img.size) == 512 and b["x0"] < 100 and b["x1"] > 400 and b["y0"] < 50 and b["y1"] > 250
            at = lambda x, y: (round((x - b["x0"]) / k), round((y - b["y0"]) / k))  # noqa: E731
            assert near(img.getpixel(at(200, 100)), (0xE0, 0x31, 0x31)) and near(img.getpixel(at(400, 150)), (0x19, 0x71, 0xC2))
            assert near(img.getpixel(at(250, 200)), (0xFB, 0xFB, 0xFC))
            # bad boxes and sizes say how to ask
            for args, says in (({"box": {"x0": 10, "y0": 0, "x1": 5, "y1": 9}}, "x0 < x1"), ({"size": 5000}, "size"),
                               ({"box": [1, 2]}, "box")):
                bad = await c.call_tool("view", args)
                assert bad.is_error and says in payload(bad), payload(bad)
    finally:
        await alice.close()


async def test_bounds_sessions_calls_and_bodies(server_factory):
    server = server_factory(mcp_token_sessions=1, mcp_room_sessions=2, mcp_calls_per_minute=3, mcp_body_bytes=8192)
    room = "bounded"
    a, b = RawSession(server, room, server.token(room, "edit")), RawSession(server, room, server.token(room, "view"))
    assert a.initialize().status_code == 200
    again = RawSession(server, room, a.token).initialize()
    assert again.status_code == 429 and "one token may open" in again.json()["error"]["message"]
    assert b.initialize().status_code == 200
    third = RawSession(server, room, server.token("*", "edit")).initialize()
    assert third.status_code == 429 and "the most it takes" in third.json()["error"]["message"]
    assert RawSession(server, "elsewhere", server.token("*", "edit")).initialize().status_code == 200  # per room
    for n in range(4):
        r = a.request("tools/call", {"name": "search", "arguments": {"query": "draw"}}).json()["result"]
        assert r["isError"] is (n == 3), r
    assert "too many calls" in r["content"][0]["text"] and "try again in" in r["content"][0]["text"]
    big = a.request("tools/call", {"name": "execute", "arguments": {"code": "1;" * 8000}})
    assert big.status_code == 413
    assert a.request("tools/list").status_code == 200  # and the session goes on


async def test_idle_sessions_end_and_their_presence_goes(server_factory):
    server = server_factory(mcp_idle_s=1)
    room = "idle"
    watcher = await connect(server, room, "watcher")
    try:
        s = RawSession(server, room, server.token(room, "edit"), name="gone-quiet")  # no stream open, never says goodbye
        assert s.initialize().status_code == 200
        await watcher.wait_for(lambda: "gone-quiet" in agents(watcher), 10)
        await watcher.wait_for(lambda: "gone-quiet" not in agents(watcher), 15)
        assert s.request("tools/list").status_code == 404  # a new session is needed
        async with mcp_client(server, room, name="streaming") as c:  # its open stream keeps it alive past idle_s
            await watcher.wait_for(lambda: "streaming" in agents(watcher), 10)
            await asyncio.sleep(2.5)
            assert "streaming" in agents(watcher)
            assert not (await c.call_tool("search", {"query": "bounds"})).is_error
    finally:
        await watcher.close()


async def test_a_revoked_tokens_session_ends_though_its_stream_is_open(server):
    room = "revoked"
    watcher = await connect(server, room, "watcher")
    doomed = server.token("*", "edit")
    try:
        async with mcp_client(server, room, name="doomed", token=doomed) as c:
            await watcher.wait_for(lambda: "doomed" in agents(watcher), 10)
            assert inhabit("revoke", doomed, "--data", str(server.data_dir)).returncode == 0
            await watcher.wait_for(lambda: "doomed" not in agents(watcher), 20)
            with pytest.raises(Exception) as refused:
                await c.call_tool("search", {"query": "draw"})
            assert "token revoked" in repr(refused.value), repr(refused.value)
        assert httpx.get(f"{server.http}/healthz").status_code == 200
    finally:
        await watcher.close()


async def test_inhabit_mcp_prints_a_working_setup(server):
    out = inhabit("mcp", "cli-room", "--data", str(server.data_dir), "--url", server.http)
    assert out.returncode == 0, out.stderr
    url = mcp_url(server, "cli-room")
    header = re.search(r"^Header:\s+(Authorization: Bearer \S+)$", out.stdout, re.M).group(1)
    assert f"claude mcp add --transport http inhabit-cli-room {url} --header '{header}'" in out.stdout
    assert '"mcpServers"' in out.stdout and f'"url": "{url}"' in out.stdout
    async with mcp_client(server, "cli-room", headers={"Authorization": header.split(": ", 1)[1]}) as c:
        assert payload(await c.call_tool("execute", {"code": "canvas.draw({points: [[0, 0], [5, 5]]})"}))["ok"]
    view = inhabit("mcp", "cli-room", "--role", "view", "--data", str(server.data_dir), "--url", server.http)
    token = re.search(r"^  (\S+\?token=(\S+))$", view.stdout, re.M).group(2)  # the form for clients that take only a URL
    headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"}
    r = httpx.post(f"{url}?token={token}", headers=headers, json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "url-only", "version": "1"}}})
    assert r.status_code == 200
    r = httpx.post(f"{url}?token={token}", headers={**headers, "Mcp-Session-Id": r.headers["mcp-session-id"]},
                   json={"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}})
    execute = next(t for t in r.json()["result"]["tools"] if t["name"] == "execute")
    assert execute["annotations"]["readOnlyHint"] is True
    assert inhabit("mcp", "not a room", "--data", str(server.data_dir)).returncode == 2
