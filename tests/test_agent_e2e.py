"""End to end: a real server subprocess, a real agent peer, the real `anthropic` client talking
to a scripted Messages-API server, the real sandbox, and headless clients as the people.

The scenario from the talk: a hand-drawn board and an X are in the room; `@agent your move`
makes the model write JavaScript that reads the raw strokes and draws an O in a free cell.
The product has no game code at all (asserted below); the program lives in this file.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import re
from pathlib import Path

import httpx
import pytest

from canvas import Message, Stroke

from model_server import ModelServer

ROOT = Path(__file__).resolve().parent.parent
REAL_KEY = os.environ.get("ANTHROPIC_API_KEY")  # read before any test touches the environment

GRID = 300.0  # the board spans (0,0)-(300,300) plus an offset
OFFSET = (100.0, 80.0)

PLAY_JS = r"""
const all = canvas.strokes();
const info = all.map(s => ({ s, w: s.bbox.x1 - s.bbox.x0, h: s.bbox.y1 - s.bbox.y0 }));
const longest = Math.max(...info.map(i => Math.max(i.w, i.h)));
const vert = info.filter(i => i.h > 0.6 * longest && i.w < 0.2 * i.h);
const horiz = info.filter(i => i.w > 0.6 * longest && i.h < 0.2 * i.w);
if (vert.length !== 2 || horiz.length !== 2)
  throw new Error(`expected 2 vertical and 2 horizontal lines, found ${vert.length} and ${horiz.length}`);
const mid = (a, b) => (a + b) / 2;
const xs = vert.map(i => mid(i.s.bbox.x0, i.s.bbox.x1)).sort((a, b) => a - b);
const ys = horiz.map(i => mid(i.s.bbox.y0, i.s.bbox.y1)).sort((a, b) => a - b);
const grid = [...vert, ...horiz];
const gx0 = Math.min(...horiz.map(i => i.s.bbox.x0)), gx1 = Math.max(...horiz.map(i => i.s.bbox.x1));
const gy0 = Math.min(...vert.map(i => i.s.bbox.y0)), gy1 = Math.max(...vert.map(i => i.s.bbox.y1));
const X = [gx0, xs[0], xs[1], gx1], Y = [gy0, ys[0], ys[1], gy1];
const marks = info.filter(i => !grid.includes(i));
const cells = [];
for (let r = 0; r < 3; r++) for (let c = 0; c < 3; c++) {
  const box = { x0: X[c], y0: Y[r], x1: X[c + 1], y1: Y[r + 1] };
  const taken = marks.some(m => {
    const cx = mid(m.s.bbox.x0, m.s.bbox.x1), cy = mid(m.s.bbox.y0, m.s.bbox.y1);
    return cx > box.x0 && cx < box.x1 && cy > box.y0 && cy < box.y1;
  });
  cells.push({ r, c, box, taken });
}
const order = [[1, 1], [0, 0], [0, 2], [2, 0], [2, 2], [0, 1], [1, 0], [1, 2], [2, 1]];
const free = order.map(([r, c]) => cells[r * 3 + c]).find(k => !k.taken);
if (!free) throw new Error('no free cell');
const cx = mid(free.box.x0, free.box.x1), cy = mid(free.box.y0, free.box.y1);
const rad = 0.3 * Math.min(free.box.x1 - free.box.x0, free.box.y1 - free.box.y0);
const arc = (a0, a1) => { const p = []; for (let i = 0; i <= 20; i++) { const a = a0 + (a1 - a0) * i / 20; p.push([cx + rad * Math.cos(a), cy + rad * Math.sin(a)]); } return p; };
const ids = [canvas.draw({ points: arc(-Math.PI / 2, Math.PI / 2), color: '#d12d2d', width: 5 }),
             canvas.draw({ points: arc(Math.PI / 2, 1.5 * Math.PI + 0.15), color: '#d12d2d', width: 5 })];
({ cell: [free.r, free.c], center: [cx, cy], radius: rad, ids, taken: cells.filter(k => k.taken).map(k => [k.r, k.c]) })
"""

FINAL_TEXT = "I drew an O in a free cell. Your move!"


def play_script(js: str = PLAY_JS) -> list[dict]:
    return [
        {"tool": "search", "input": {"query": "strokes draw"}},
        {"tool": "execute", "input": {"code": js}},
        {"text": FINAL_TEXT},
    ]


def _line(x0: float, y0: float, x1: float, y1: float, rnd: random.Random, n: int = 24, wobble: float = 3.0) -> list[float]:
    pts: list[float] = []
    for i in range(n):
        t = i / (n - 1)
        pts += [x0 + (x1 - x0) * t + rnd.uniform(-wobble, wobble), y0 + (y1 - y0) * t + rnd.uniform(-wobble, wobble), round(rnd.uniform(0.4, 0.7), 2)]
    return pts


def board_strokes(author: str = "alice") -> list[Stroke]:
    """Two vertical and two horizontal wobbly lines, plus an X (two crossing strokes) in the top-left cell."""
    rnd = random.Random(7)
    ox, oy = OFFSET
    third = GRID / 3
    lines = [
        _line(ox + third, oy, ox + third + 6, oy + GRID, rnd),
        _line(ox + 2 * third - 4, oy + 3, ox + 2 * third, oy + GRID - 2, rnd),
        _line(ox, oy + third, ox + GRID, oy + third + 5, rnd),
        _line(ox + 2, oy + 2 * third, ox + GRID - 3, oy + 2 * third - 4, rnd),
        _line(ox + 20, oy + 18, ox + 80, oy + 82, rnd, n=10, wobble=2),
        _line(ox + 82, oy + 20, ox + 18, oy + 80, rnd, n=10, wobble=2),
    ]
    return [Stroke(id=f"h{i}", points=p, author=author, kind="human", t=1_000 + i) for i, p in enumerate(lines)]


def cell_of(x: float, y: float) -> tuple[int, int] | None:
    ox, oy = OFFSET
    third = GRID / 3
    c, r = math.floor((x - ox) / third), math.floor((y - oy) / third)
    return (r, c) if 0 <= r < 3 and 0 <= c < 3 else None


def cell_box(r: int, c: int) -> tuple[float, float, float, float]:
    ox, oy = OFFSET
    third = GRID / 3
    return (ox + c * third, oy + r * third, ox + (c + 1) * third, oy + (r + 1) * third)


# ---- fixtures and helpers ---------------------------------------------------------------


def scripted_env(ms: ModelServer) -> dict[str, str]:
    # a fake key and a loopback base URL: scripted tests can never reach the real API
    return {"ANTHROPIC_BASE_URL": ms.url, "ANTHROPIC_API_KEY": "test", "INHABIT_MODEL": "scripted-model"}


async def connect(server, room: str, name: str, role: str = "edit"):
    from wire.client import CanvasClient

    return await CanvasClient.connect(server.ws, room, token=server.token(room, role), name=name, kind="human")


async def post_prompt(server, room: str, text: str, role: str = "edit") -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.post(f"{server.http}/rooms/{room}/prompts", json={"text": text}, headers={"Authorization": f"Bearer {server.token(room, role)}"})


async def get_run(server, room: str, run_id: str) -> dict:
    async with httpx.AsyncClient() as http:
        r = await http.get(f"{server.http}/rooms/{room}/runs/{run_id}", params={"token": server.token(room, "view")})
        r.raise_for_status()
        return r.json()


async def wait_run(server, room: str, run_id: str, timeout: float = 30) -> dict:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        run = await get_run(server, room, run_id)
        if run["status"] in ("done", "failed"):
            return run
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"run {run_id} still {run['status']} after {timeout}s: {run}")
        await asyncio.sleep(0.1)


async def wait_chat(client, pred, timeout: float = 15) -> Message:
    found: list[Message] = []

    def check(*_a) -> bool:
        for m in client.doc.messages():
            if pred(m):
                found.append(m)
                return True
        return False

    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"no such chat message; chat: {[m.text for m in client.doc.messages()]}")
        await asyncio.sleep(0.05)
    return found[0]


def watch_strokes(client) -> list[dict]:
    """One entry per transaction that changed the strokes map, as seen by this peer."""
    events: list[dict] = []
    client.doc.strokes_map.observe(lambda ev: events.append(dict(ev.keys)))
    return events


def fingerprint(client) -> list[tuple[str, tuple[float, ...]]]:
    return sorted((s.id, tuple(s.points)) for s in client.doc.strokes())


# ---- the scenario ---------------------------------------------------------------------


async def test_agent_takes_a_turn_from_raw_strokes(server_factory, model_server):
    room = "board1"
    model_server.script(room, play_script())
    server = server_factory(env=scripted_env(model_server))
    alice = await connect(server, room, "alice")
    alice.doc.add_strokes(board_strokes())
    observer = await connect(server, room, "bob", role="view")
    await observer.wait_for(lambda: len(observer.doc.strokes()) == 6, 10)
    events = watch_strokes(observer)
    try:
        # 1) a prompt over HTTP (starts the room's hosted agent)
        r = await post_prompt(server, room, "@agent your move")
        assert r.status_code == 202, r.text
        run1 = await wait_run(server, room, r.json()["run"])
        assert run1["status"] == "done", run1
        assert run1["grant"] == "write" and run1["code"] == [PLAY_JS]
        assert len(run1["strokes"]) == 2 and run1["tokens"]["turns"] == 3 and run1["tokens"]["input"] > 0
        o1 = await _assert_o(observer, run1, events, taken={(0, 0)})

        # 2) the same prompt as a chat message from a person
        alice.doc.post(Message(author="alice", text="@agent your move"))
        reply = await wait_chat(alice, lambda m: m.kind == "agent" and m.run and m.run != run1["id"] and FINAL_TEXT in m.text, 30)
        run2 = await wait_run(server, room, reply.run)
        assert run2["status"] == "done" and run2["source"] == "chat" and run2["author"] == "alice", run2
        o2 = await _assert_o(observer, run2, events, taken={(0, 0), o1})
        assert o2 != o1

        # the chat shows a status line and the reply for each run, attributed to the run
        agent_lines = [m for m in alice.doc.messages() if m.kind == "agent"]
        for run in (run1, run2):
            lines = [m.text for m in agent_lines if m.run == run["id"]]
            assert len(lines) == 2 and run["id"] in lines[0] and FINAL_TEXT in lines[1], lines

        # the agent is a peer with presence
        peers = [s for s in observer.awareness().values() if (s.get("user") or {}).get("kind") == "agent"]
        assert peers and peers[0]["user"]["name"] == "agent"

        # what the model was sent: the two Code Mode tools, a short system prompt, the fake key
        reqs = model_server.requests_for(room)
        assert len(reqs) == 6
        assert all("test" in (q["headers"].get("x-api-key"), q["headers"].get("authorization")) or q["headers"].get("authorization") == "Bearer test" for q in reqs)
        assert [t["name"] for t in reqs[0]["body"]["tools"]] == ["search", "execute"]
        assert len(reqs[0]["body"]["system"]) < 4_400  # ~1,000 tokens
        search_result = reqs[1]["body"]["messages"][-1]["content"][0]["content"]
        assert "canvas.draw" in search_result and "canvas.strokes" in search_result

        # 3) undo the first run: its strokes go, in one transaction, the rest stays
        n_events = len(events)
        async with httpx.AsyncClient() as http:
            r = await http.post(f"{server.http}/rooms/{room}/runs/{run1['id']}/undo", params={"token": server.token(room, "edit")})
        assert r.status_code == 200 and sorted(r.json()["erased"]) == sorted(run1["strokes"])
        await observer.wait_for(lambda: not any(observer.doc.stroke(i) for i in run1["strokes"]), 10)
        assert len(events) == n_events + 1
        assert {s.id for s in observer.doc.strokes()} == {f"h{i}" for i in range(6)} | set(run2["strokes"])
        async with httpx.AsyncClient() as http:
            r = await http.post(f"{server.http}/rooms/{room}/runs/{run2['id']}/undo", params={"token": server.token(room, "view")})
        assert r.status_code == 403
    finally:
        await alice.close()
        await observer.close()


async def _assert_o(observer, run: dict, events: list[dict], taken: set) -> tuple[int, int]:
    ids = run["strokes"]
    await observer.wait_for(lambda: all(observer.doc.stroke(i) for i in ids), 10)
    strokes = [observer.doc.stroke(i) for i in ids]
    assert all(s.kind == "agent" and s.run == run["id"] and s.author == "agent" for s in strokes)
    xs = [p for s in strokes for p in s.points[0::3]]
    ys = [p for s in strokes for p in s.points[1::3]]
    cells = {cell_of(x, y) for x, y in zip(xs, ys, strict=True)}
    assert len(cells) == 1 and None not in cells, cells
    cell = cells.pop()
    assert cell not in taken, (cell, taken)
    x0, y0, x1, y1 = cell_box(*cell)
    cx, cy = (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2
    assert abs(cx - (x0 + x1) / 2) < 15 and abs(cy - (y0 + y1) / 2) < 15
    assert max(xs) - min(xs) > 30  # a ring, not a dot
    # all of the run's strokes arrived in ONE transaction
    carrying = [e for e in events if set(ids) & set(e)]
    assert len(carrying) == 1 and set(ids) <= set(carrying[0]), carrying
    return cell


def test_no_game_logic_in_the_product():
    pattern = re.compile(r"\b(tic|tac|toe|noughts|tictactoe)\b|tic-?tac-?toe", re.I)
    hits = []
    for top in ("canvas", "server", "agent", "web/src"):
        for path in (ROOT / top).rglob("*"):
            if path.is_file() and path.suffix in (".py", ".js", ".ts", ".mjs", ".md", ".html", ".css", ".json"):
                for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                    if pattern.search(line):
                        hits.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not hits, hits


# ---- failure paths: the room stays untouched, the run and the chat say what happened -----

FAILURES = {
    "jserr": ([{"tool": "execute", "input": {"code": "canvas.draw({points: [[1, 1], [50, 50]]});\nnull.boom;"}}, {"text": "Oops."}], "TypeError"),
    "loop": ([{"tool": "execute", "input": {"code": "canvas.draw({points: [[1, 1], [50, 50]]}); while (true) {}"}}, {"text": "Too slow."}], "time"),
    "quota": ([{"tool": "execute", "input": {"code": "for (let i = 0; i < 1000; i++) canvas.draw({points: [[i, 0], [i, 10]]});"}}, {"text": "Too many."}], "quota"),
    "garbage": ([{"raw": "this is not json {{{", "status": 200}], "could not read"),
    "garbage2": ([{"raw": '{"hello": "world"}', "status": 200}], "could not read"),
    "badinput": ([{"tool": "execute", "input": {"source": 42}}, {"tool": "nonsense", "input": {}}, {"text": "I am confused."}], "malformed tool input"),
    "error500": ([{"raw": '{"type": "error", "error": {"type": "api_error", "message": "overloaded"}}', "status": 500}], "HTTP 500"),
    "readonly": ([{"tool": "execute", "input": {"code": "canvas.draw({points: [[1, 1], [50, 50]]})"}}, {"text": "Cannot draw."}], "read-only"),
}


async def test_failures_leave_the_room_untouched(server_factory, model_server):
    for room, (turns, _) in FAILURES.items():
        model_server.script(room, turns)
    server = server_factory(env=scripted_env(model_server))
    clients = {}
    try:
        for room in FAILURES:
            c = clients[room] = await connect(server, room, "carol")
            c.doc.add_strokes(board_strokes("carol"))
        before = {room: fingerprint(c) for room, c in clients.items()}
        runs = {}
        for room in FAILURES:
            r = await post_prompt(server, room, "@agent your move", role="view" if room == "readonly" else "edit")
            assert r.status_code == 202, r.text
            runs[room] = r.json()["run"]
        for room, (_, expect) in FAILURES.items():
            run = await wait_run(server, room, runs[room])
            assert run["status"] == "failed", (room, run)
            assert run["strokes"] == []
            assert any(expect.lower() in e.lower() for e in run["errors"]), (room, run["errors"])
            reply = await wait_chat(clients[room], lambda m, rid=run["id"]: m.run == rid and "did not work" in m.text)
            assert len(reply.text) < 1700 and "Traceback" not in reply.text
            assert fingerprint(clients[room]) == before[room], room
        assert (await get_run(server, "readonly", runs["readonly"]))["grant"] == "read"
        # the server keeps working
        async with httpx.AsyncClient() as http:
            assert (await http.get(f"{server.http}/healthz")).status_code == 200
    finally:
        for c in clients.values():
            await c.close()


async def test_model_down_and_missing_key(server_factory):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    dead = s.getsockname()[1]
    s.close()  # nothing listens here
    for env, expect in (
        ({"ANTHROPIC_BASE_URL": f"http://127.0.0.1:{dead}", "ANTHROPIC_API_KEY": "test"}, "could not reach the model"),
        ({"ANTHROPIC_BASE_URL": f"http://127.0.0.1:{dead}", "ANTHROPIC_API_KEY": "", "ANTHROPIC_AUTH_TOKEN": ""}, "ANTHROPIC_API_KEY"),
    ):
        server = server_factory(env=env)
        room = "down"
        c = await connect(server, room, "dave")
        try:
            c.doc.add_strokes(board_strokes("dave"))
            before = fingerprint(c)
            r = await post_prompt(server, room, "@agent your move")
            run = await wait_run(server, room, r.json()["run"])
            assert run["status"] == "failed" and any(expect in e for e in run["errors"]), run
            await wait_chat(c, lambda m, rid=run["id"], want=expect: m.run == rid and want in m.text)
            assert fingerprint(c) == before
            async with httpx.AsyncClient() as http:
                assert (await http.get(f"{server.http}/healthz")).status_code == 200
        finally:
            await c.close()
            server.stop()


async def test_prompt_needs_a_token(server_factory, model_server):
    server = server_factory(env=scripted_env(model_server))
    async with httpx.AsyncClient() as http:
        r = await http.post(f"{server.http}/rooms/r1/prompts", json={"text": "@agent hi"})
        assert r.status_code == 401
        r = await http.post(f"{server.http}/rooms/r1/prompts", json={"text": "@agent hi"}, params={"token": server.token("other", "edit")})
        assert r.status_code == 401
        r = await http.post(f"{server.http}/rooms/r1/prompts", json={"nope": 1}, params={"token": server.token("r1", "edit")})
        assert r.status_code == 400
        r = await http.get(f"{server.http}/rooms/r1/runs", params={"token": server.token("r1", "view")})
        assert r.status_code == 200 and r.json() == {"runs": []}


# ---- the real model (only with a key) -----------------------------------------------------


@pytest.mark.skipif(not REAL_KEY, reason="ANTHROPIC_API_KEY not set: real-model test skipped")
async def test_real_model_takes_a_turn(server_factory):
    env = {"ANTHROPIC_API_KEY": REAL_KEY or ""}
    if os.environ.get("ANTHROPIC_BASE_URL"):
        env["ANTHROPIC_BASE_URL"] = os.environ["ANTHROPIC_BASE_URL"]
    server = server_factory(env=env)
    room = "real"
    alice = await connect(server, room, "alice")
    try:
        alice.doc.add_strokes(board_strokes())
        r = await post_prompt(server, room, "@agent your move (I played X)")
        run = await wait_run(server, room, r.json()["run"], timeout=240)
        assert run["status"] == "done", run
        await alice.wait_for(lambda: all(alice.doc.stroke(i) for i in run["strokes"]), 10)
        strokes = [alice.doc.stroke(i) for i in run["strokes"]]
        assert strokes, run
        pts = [(x, y) for s in strokes for x, y in s.xy()]
        cx = sum(x for x, _ in pts) / len(pts)
        cy = sum(y for _, y in pts) / len(pts)
        assert cell_of(cx, cy) not in (None, (0, 0)), (cx, cy, run["code"])
    finally:
        await alice.close()


async def test_idle_hosted_agent_leaves_the_room(server_factory, model_server):
    room = "idle"
    model_server.script(room, [{"text": "Hello!"}])
    server = server_factory(env={**scripted_env(model_server), "INHABIT_AGENT_IDLE_S": "1"})
    watcher = await connect(server, room, "eve", role="view")
    try:
        r = await post_prompt(server, room, "@agent hi")
        run = await wait_run(server, room, r.json()["run"])
        assert run["status"] == "done" and run["reply"] == "Hello!"
        agents = lambda: [s for s in watcher.awareness().values() if (s.get("user") or {}).get("kind") == "agent"]  # noqa: E731
        await watcher.wait_for(lambda: agents(), 10)
        await watcher.wait_for(lambda: not agents(), 15)
        # a new prompt brings it back
        r = await post_prompt(server, room, "@agent hi again")
        assert (await wait_run(server, room, r.json()["run"]))["status"] == "done"
    finally:
        await watcher.close()
