"""Helpers shared by the agent tests (test_agent_e2e, test_agent_cli, test_agent_runs_persist):
the hand-drawn board, the JavaScript a scripted model "writes" to take a turn, and the
connect / prompt / wait helpers that talk to a live server (tests/support/live_server.py's LiveServer).

The product has no game code at all (test_agent_e2e asserts it); the program lives here.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import subprocess
import sys
from typing import Any

import httpx

from canvas import Message, Stroke

from support import ROOT
from support.model_server import ModelServer

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


def inhabit(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the `inhabit` command line (as `python -m inhabit`) and capture what it prints."""
    full = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "inhabit", *args], cwd=ROOT, env=full, capture_output=True, text=True, timeout=timeout)


# ---- cluster nodes (tests/support/fixtures.py's Cluster) ----------------------------------------


async def prompt(node, token: str, text: str, room: str = "agents") -> str:
    async with httpx.AsyncClient() as http:
        r = await http.post(f"{node.http}/rooms/{room}/prompts", json={"text": text}, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 202, r.text
    return r.json()["run"]


async def run_on(node, token: str, run_id: str, timeout: float = 40, room: str = "agents") -> dict:
    """The run as `node` serves it, once finished."""
    async with httpx.AsyncClient() as http:
        for _ in range(int(timeout / 0.1)):
            r = await http.get(f"{node.http}/rooms/{room}/runs/{run_id}", params={"token": token})
            if r.status_code == 200 and r.json()["status"] in ("done", "failed"):
                return r.json()
            await asyncio.sleep(0.1)
    raise AssertionError(f"run {run_id} did not finish on node {node.port} in {timeout} s")


def node_id(node) -> str:
    return httpx.get(f"{node.http}/healthz").json()["node"]


def agents_here(c: Any) -> set[int]:
    """The awareness client ids of agents present in the room."""
    return {cid for cid, s in c.awareness().items() if s.get("user", {}).get("kind") == "agent"}
