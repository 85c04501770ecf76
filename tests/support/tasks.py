"""The scripted task suite: four canvas tasks a capable model did, replayed with its kind of moves.

Each task is a scenario against a live server (tests/support/live_server.py): the people (headless
clients), the prompt, and what the model "writes" — searches as a model makes them (repeats
included: that is what `search`'s "shown above" is for) and JavaScript that is test data, generic
geometry over raw strokes (the product has no task code). Each is judged on the room's final state
only, and measured: the requests the model was sent and their characters (the scripted Messages-API
server records them), or for an MCP client the characters of the tool results it received.

Why shared, not in the test module: `tests/agent/test_tasks.py` asserts the verdicts, and
`bench/tokens.py` runs the same scenarios against this tree and an older one to print the figures.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import mcp_types as types

from canvas import Stroke, new_id

from support.agent_helpers import board_strokes, connect, post_prompt, wait_chat, wait_run
from support.behaviour_helpers import human_move, marks, wait_behaviour, winner, x_strokes
from support.mcp_helpers import mcp_client, payload
from support.model_server import ModelServer


@dataclass
class TaskResult:
    """What a task cost and how it ended: `problems` is empty when the room's final state is right."""

    task: str
    requests: int = 0
    input_chars: int = 0
    problems: list[str] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)


def model_cost(result: TaskResult, model_server: ModelServer, room: str) -> TaskResult:
    """The requests the model was sent for `room`, and their characters (system, tools, messages)."""
    reqs = model_server.requests_for(room)
    result.requests = len(reqs)
    result.input_chars = sum(len(json.dumps({k: r["body"].get(k) for k in ("system", "tools", "messages")})) for r in reqs)
    return result


# ---- tic-tac-toe on a slightly rotated, hand-drawn board ------------------------------------------

ROTATION = math.radians(6)
CENTRE = (250.0, 230.0)  # the helpers' board's middle (agent_helpers.OFFSET + GRID / 2)

ROTATED_PLAYER_JS = r"""
// Plays O on a hand-drawn 3x3 board at any small angle: one move per X a person completes (two strokes).
const len = s => s.points.reduce((n, p, i) => i ? n + Math.hypot(p[0] - s.points[i - 1][0], p[1] - s.points[i - 1][1]) : 0, 0);
const fold = a => a > Math.PI / 2 ? a - Math.PI : a <= -Math.PI / 2 ? a + Math.PI : a;
const turn = (theta, [x, y]) => [x * Math.cos(theta) - y * Math.sin(theta), x * Math.sin(theta) + y * Math.cos(theta)];
const mean = (ps, k) => ps.reduce((n, p) => n + p[k], 0) / ps.length;
if (!state.grid) {  // the board: two long near-horizontal and two long near-vertical strokes, at a common tilt
  const human = canvas.strokes({kind: 'human'});
  const longest = Math.max(...human.map(len));
  const lines = human.filter(s => len(s) > 0.6 * longest).map(s => {
    const a = s.points[0], b = s.points[s.points.length - 1];
    return {s, ang: fold(Math.atan2(b[1] - a[1], b[0] - a[0]))};
  });
  const horiz = lines.filter(l => Math.abs(l.ang) < Math.PI / 4), vert = lines.filter(l => Math.abs(l.ang) >= Math.PI / 4);
  if (vert.length !== 2 || horiz.length !== 2) throw new Error(`no board: ${vert.length} vertical and ${horiz.length} horizontal lines`);
  const tilt = [...horiz.map(l => l.ang), ...vert.map(l => l.ang - Math.sign(l.ang) * Math.PI / 2)];
  const theta = tilt.reduce((a, b) => a + b) / tilt.length;
  const upright = l => l.s.points.map(p => turn(-theta, p));  // in board coordinates: the lines axis-aligned
  const [hs, vs] = [horiz.map(upright), vert.map(upright)];
  state.grid = {
    theta, lines: lines.map(l => l.s.id),
    U: [Math.min(...hs.flat().map(p => p[0])), ...vs.map(p => mean(p, 0)).sort((a, b) => a - b), Math.max(...hs.flat().map(p => p[0]))],
    V: [Math.min(...vs.flat().map(p => p[1])), ...hs.map(p => mean(p, 1)).sort((a, b) => a - b), Math.max(...vs.flat().map(p => p[1]))],
  };
  state.board = Array(9).fill('');
}
const {theta, lines} = state.grid;
const centre = s => { const p = s.points.map(q => turn(-theta, q)); return [mean(p, 0), mean(p, 1)]; };
const {U, V} = state.grid;
const cellAt = ([u, v]) => {
  for (let r = 0; r < 3; r++) for (let c = 0; c < 3; c++) if (u > U[c] && u < U[c + 1] && v > V[r] && v < V[r + 1]) return r * 3 + c;
  return -1;
};
const inCell = Array(9).fill(0);
for (const s of canvas.strokes()) {
  if (lines.includes(s.id) || s.behaviour === behaviour.id) continue;
  const k = cellAt(centre(s));
  if (k >= 0) inCell[k]++;
}
const board = state.board;
for (let k = 0; k < 9; k++) if (!board[k] && inCell[k] >= 2) board[k] = 'X';
const LINES = [[0, 1, 2], [3, 4, 5], [6, 7, 8], [0, 3, 6], [1, 4, 7], [2, 5, 8], [0, 4, 8], [2, 4, 6]];
const winner = b => { const l = LINES.find(l => b[l[0]] && l.every(k => b[k] === b[l[0]])); return l ? b[l[0]] : ''; };
const free = [...Array(9).keys()].filter(k => !board[k]);
const completes = m => free.find(k => winner(board.map((x, i) => (i === k ? m : x))) === m);
let moved = null;
if (!winner(board) && free.length && !inCell.some((n, k) => n === 1 && !board[k])
    && board.filter(m => m === 'X').length > board.filter(m => m === 'O').length) {
  const k = completes('O') ?? completes('X') ?? [4, 0, 2, 6, 8, 1, 3, 5, 7].find(k => !board[k]);
  const r = Math.floor(k / 3), c = k % 3, rad = 0.3 * Math.min(U[c + 1] - U[c], V[r + 1] - V[r]);
  const [cx, cy] = turn(theta, [(U[c] + U[c + 1]) / 2, (V[r] + V[r + 1]) / 2]);
  const ring = [];
  for (let i = 0; i <= 32; i++) { const a = 2 * Math.PI * i / 32; ring.push([cx + rad * Math.cos(a), cy + rad * Math.sin(a)]); }
  canvas.draw({points: ring, color: '#d12d2d', width: 5});
  board[k] = 'O';
  moved = k;
}
const w = winner(board);
if (w || !board.some(m => !m)) {
  const result = w ? `${w} wins!` : 'A draw!';
  canvas.say(`Game over: ${result}`);
  behaviour.stop(result);
}
({board: board.join('') || null, moved})
"""


def rotate(s: Stroke, angle: float = ROTATION) -> Stroke:
    """`s` turned by `angle` about the board's centre."""
    cx, cy = CENTRE
    c, n = math.cos(angle), math.sin(angle)
    pts = list(s.points)
    for i in range(0, len(pts), 3):
        x, y = pts[i] - cx, pts[i + 1] - cy
        pts[i], pts[i + 1] = cx + x * c - y * n, cy + x * n + y * c
    return s.model_copy(update={"points": pts})


async def tictactoe(server: Any, model_server: ModelServer, room: str = "task-ttt") -> TaskResult:
    """A person plays X on a rotated board to the end; the model installs a player once."""
    model_server.script(room, [
        {"tool": "search", "input": {"query": "behaviour"}},
        {"tool": "search", "input": {"query": "canvas.strokes"}},
        {"tool": "execute", "input": {"code": ROTATED_PLAYER_JS, "on": ["stroke"], "name": "tictactoe"}},
        {"text": "You're on: I drew my O. Your move!"},
    ])
    result = TaskResult("tic-tac-toe (rotated board)")
    alice = await connect(server, room, "alice")
    try:
        alice.doc.add_strokes([rotate(s) for s in board_strokes()])
        run = await wait_run(server, room, (await post_prompt(server, room, "@agent let's play tic-tac-toe, you're O")).json()["run"])
        b = await wait_behaviour(server, room, lambda b: b["name"] == "tictactoe")
        bid = b["id"]
        await alice.wait_for(lambda: any(s.behaviour == bid for s in alice.doc.strokes()), 15)
        calls_after_install = len(model_server.requests_for(room))
        unrotate: Callable[[Stroke], Stroke] = lambda s: rotate(s, -ROTATION)  # noqa: E731
        for _ in range(5):
            board = marks(alice.doc.strokes(), bid, unrotate)
            if winner(board) or len(board) == 9:
                break
            k = human_move(board)
            noughts = sum(1 for s in alice.doc.strokes() if s.behaviour == bid)
            alice.doc.add_strokes([rotate(s) for s in x_strokes(k // 3, k % 3)])
            board[k] = "X"
            if winner(board) or len(board) == 9:
                break
            await alice.wait_for(lambda doc, n=noughts: sum(1 for s in doc.strokes() if s.behaviour == bid) > n, 15)
        said = await wait_chat(alice, lambda m: m.behaviour == bid and "Game over" in m.text)
        await wait_behaviour(server, room, lambda b: b["id"] == bid and b["status"] == "stopped")
        final = marks(alice.doc.strokes(), bid, unrotate)
        result.detail = {"board": "".join(final.get(k, ".") for k in range(9)), "said": said.text, "run": run["status"]}
        result.problems = game_problems(final, alice.doc.strokes(), bid, unrotate)
        if len(model_server.requests_for(room)) != calls_after_install:
            result.problems.append("the model was called during the game")
    finally:
        await alice.close()
    return model_cost(result, model_server, room)


def game_problems(board: dict[int, str], strokes: list[Stroke], bid: str, to_board: Callable[[Stroke], Stroke]) -> list[str]:
    """Why the room does not show a legal finished game of X (first) against the behaviour's O."""
    problems = []
    xs, os_ = [k for k, v in board.items() if v == "X"], [k for k, v in board.items() if v == "O"]
    w = winner(board)
    if not (w or len(board) == 9):
        problems.append(f"the game is not over: {board}")
    if len(xs) - len(os_) not in ((1,) if w == "X" else (0,) if w == "O" else (0, 1)):
        problems.append(f"{len(xs)} X and {len(os_)} O do not alternate (winner {w or 'none'})")
    if all(winner({k: m for k, m in board.items() if m == mark}) for mark in "XO"):
        problems.append("both players have a line")
    noughts = [s for s in strokes if s.behaviour == bid]
    if len(noughts) != len(os_):
        problems.append(f"{len(noughts)} O strokes for {len(os_)} O cells: an O off the board or two in a cell")
    return problems


# ---- connect the dots, across a server restart ----------------------------------------------------

DOTS_JS = r"""
// Joins each new dot (a tiny stroke by a person) to the previous one.
const isDot = s => s.kind === 'human' && s.bbox.x1 - s.bbox.x0 < 12 && s.bbox.y1 - s.bbox.y0 < 12;
const centre = s => [(s.bbox.x0 + s.bbox.x1) / 2, (s.bbox.y0 + s.bbox.y1) / 2];
const dots = (event.type === 'install' ? canvas.strokes() : event.strokes ?? []).filter(isDot);
let joined = 0;
for (const d of dots) {
  const c = centre(d);
  if (state.last) { canvas.draw({points: [state.last, c], color: '#1971c2', width: 3}); joined++; }
  state.last = c;
}
({last: state.last, joined})
"""

DOTS = [(120.0, 140.0), (300.0, 90.0), (420.0, 260.0), (210.0, 330.0)]


def dot(x: float, y: float) -> Stroke:
    return Stroke(id=new_id("dot"), points=[x - 1, y, 0.5, x + 1, y + 1, 0.5, x, y - 1, 0.5], author="alice", width=6)


async def connect_the_dots(server: Any, model_server: ModelServer, room: str = "task-dots") -> TaskResult:
    """A person draws dots; the behaviour joins each to the previous; the server restarts between two."""
    model_server.script(room, [
        {"tool": "search", "input": {"query": "behaviour"}},
        {"tool": "search", "input": {"query": "behaviour event stroke"}},
        {"tool": "search", "input": {"query": "behaviour state previous"}},
        {"tool": "execute", "input": {"code": DOTS_JS, "on": ["stroke"], "name": "dots"}},
        {"text": "Done: every dot you draw now joins the previous one."},
    ])
    result = TaskResult("connect the dots (restart)")
    alice = await connect(server, room, "alice")
    try:
        alice.doc.add_strokes([dot(*DOTS[0])])
        await wait_run(server, room, (await post_prompt(server, room, "@agent whenever I draw a dot, connect it to the previous one")).json()["run"])
        bid = (await wait_behaviour(server, room, lambda b: b["name"] == "dots"))["id"]
        for i, (x, y) in enumerate(DOTS[1:], start=1):
            if i == 2:  # the server restarts between two dots; the behaviour goes on from its saved state
                await alice.close()
                server.restart()
                alice = await connect(server, room, "alice")
            alice.doc.add_strokes([dot(x, y)])
            await alice.wait_for(lambda doc, n=i: sum(1 for s in doc.strokes() if s.behaviour == bid) >= n, 15)
        joins = [s for s in alice.doc.strokes() if s.behaviour == bid]
        ends = {(round(s.points[0]), round(s.points[1]), round(s.points[-3]), round(s.points[-2])) for s in joins}
        want = {(round(a[0]), round(a[1]), round(b[0]), round(b[1])) for a, b in zip(DOTS, DOTS[1:], strict=False)}
        result.detail = {"joined": len(ends & want), "of": len(want)}
        if ends != want or len(joins) != len(want):
            result.problems.append(f"joins {sorted(ends)} are not the dots in order {sorted(want)}")
    finally:
        await alice.close()
    return model_cost(result, model_server, room)


# ---- mirror a drawing across x = 500 ----------------------------------------------------------------

MIRROR_JS = r"""
const mine = canvas.strokes({kind: 'human'});
const ids = mine.map(s => canvas.draw({points: s.points.map(([x, y]) => [1000 - x, y]), color: s.color, width: s.width}));
({mirrored: ids.length})
"""


def flag() -> list[Stroke]:
    pole = Stroke(id="pole", points=[v for i in range(20) for v in (200.0 + 0.3 * math.sin(i), 400.0 - 15 * i, 0.5)], author="alice", width=5)
    cloth = Stroke(id="cloth", points=[200.0, 115.0, 0.5, 330.0, 150.0, 0.6, 200.0, 190.0, 0.5, 200.0, 115.0, 0.5], author="alice", color="#d12d2d")
    return [pole, cloth]


async def mirror(server: Any, model_server: ModelServer, room: str = "task-mirror") -> TaskResult:
    model_server.script(room, [
        {"tool": "search", "input": {"query": "canvas.strokes"}},
        {"tool": "search", "input": {"query": "strokes filter"}},
        {"tool": "search", "input": {"query": "draw"}},
        {"tool": "execute", "input": {"code": MIRROR_JS}},
        {"text": "Mirrored your flag across x = 500."},
    ])
    result = TaskResult("mirror across x = 500")
    alice = await connect(server, room, "alice")
    try:
        alice.doc.add_strokes(flag())
        await wait_run(server, room, (await post_prompt(server, room, "@agent mirror my flag across x = 500")).json()["run"])
        await alice.wait_for(lambda: len(alice.doc.strokes()) >= 4, 15)
        got = sorted(tuple(round(v, 3) for k, v in enumerate(s.points) if k % 3 != 2) for s in alice.doc.strokes() if s.kind == "agent")
        want = sorted(tuple(round(1000 - v if k % 3 == 0 else v, 3) for k, v in enumerate(s.points) if k % 3 != 2) for s in flag())
        result.detail = {"mirrored": sum(1 for g in got if g in want), "of": len(want)}
        if got != want:
            result.problems.append("the agent's strokes are not the exact mirror of the flag")
    finally:
        await alice.close()
    return model_cost(result, model_server, room)


# ---- circle the closed shapes, as an MCP client ---------------------------------------------------

CIRCLE_JS = r"""
const len = s => s.points.reduce((n, p, i) => i ? n + Math.hypot(p[0] - s.points[i - 1][0], p[1] - s.points[i - 1][1]) : 0, 0);
const closed = canvas.strokes({kind: 'human'}).filter(s => {
  const a = s.points[0], b = s.points[s.points.length - 1];
  return len(s) > 40 && Math.hypot(b[0] - a[0], b[1] - a[1]) < 0.1 * len(s);
});
for (const s of closed) {
  const cx = (s.bbox.x0 + s.bbox.x1) / 2, cy = (s.bbox.y0 + s.bbox.y1) / 2;
  const r = Math.hypot(s.bbox.x1 - s.bbox.x0, s.bbox.y1 - s.bbox.y0) / 2 + 10, ring = [];
  for (let i = 0; i <= 48; i++) { const a = 2 * Math.PI * i / 48; ring.push([cx + r * Math.cos(a), cy + r * Math.sin(a)]); }
  canvas.draw({points: ring, color: '#e03131', width: 3});
}
canvas.say(`There are ${closed.length} closed shapes; I circled each in red.`);
({closed: closed.length})
"""


def shapes() -> tuple[list[Stroke], list[Stroke]]:
    """(closed shapes, open strokes) as a person drew them: a square, a triangle, a loop; a line, an arc."""
    def flat(pts: list[tuple[float, float]]) -> list[float]:
        return [v for x, y in pts for v in (x, y, 0.5)]

    square = [(100.0, 100.0), (200.0, 100.0), (200.0, 200.0), (100.0, 200.0), (101.0, 102.0)]
    triangle = [(400.0, 100.0), (480.0, 220.0), (320.0, 220.0), (399.0, 103.0)]
    loop = [(650 + 60 * math.cos(a / 20 * 2 * math.pi), 160 + 40 * math.sin(a / 20 * 2 * math.pi)) for a in range(21)]
    line = [(100.0 + 10 * i, 400.0 + 2 * i) for i in range(30)]
    arc = [(600 + 80 * math.cos(a / 20 * math.pi), 450 + 80 * math.sin(a / 20 * math.pi)) for a in range(21)]
    closed = [Stroke(id=f"closed{i}", points=flat(p), author="alice") for i, p in enumerate((square, triangle, loop))]
    return closed, [Stroke(id=f"open{i}", points=flat(p), author="alice") for i, p in enumerate((line, arc))]


async def circle_closed_shapes(server: Any, room: str = "task-circles") -> TaskResult:
    """Over MCP (the official client): find the closed strokes, circle each in red, say how many."""
    result = TaskResult("circle closed shapes (MCP)")
    alice = await connect(server, room, "alice")
    closed, open_ = shapes()
    try:
        alice.doc.add_strokes(closed + open_)
        async with mcp_client(server, room, name="claude") as c:
            texts: list[str] = [c.instructions or ""]

            async def call(tool: str, args: dict[str, Any]) -> types.CallToolResult:
                out = await c.call_tool(tool, args)
                texts.extend(b.text for b in out.content if isinstance(b, types.TextContent))
                result.requests += 1
                return out

            searches = [payload(await call("search", {"query": q})) for q in ("canvas.strokes", "draw", "strokes closed", "canvas.say")]
            out = payload(await call("execute", {"code": CIRCLE_JS}))
        result.input_chars = sum(len(t) for t in texts)
        said = await wait_chat(alice, lambda m: m.kind == "agent" and "closed shapes" in m.text)
        rings = [s for s in alice.doc.strokes() if s.kind == "agent" and s.color == "#e03131"]
        around = {s.id for s in closed + open_ for r in rings if _inside(s, r)}
        result.detail = {"circled": len(around & {s.id for s in closed}), "of": len(closed), "said": said.text, "result": out.get("result"),
                         "searches": searches}
        if around != {s.id for s in closed} or len(rings) != len(closed):
            result.problems.append(f"{len(rings)} red rings around {sorted(around)}; the closed shapes are {[s.id for s in closed]}")
        if "There are 3 closed shapes" not in said.text:
            result.problems.append(f"the count said is wrong: {said.text!r}")
    finally:
        await alice.close()
    return result


def _inside(s: Stroke, ring: Stroke) -> bool:
    """Every point of `s` is inside the (round) `ring`."""
    xs, ys = ring.points[0::3], ring.points[1::3]
    cx, cy = (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2
    r = (max(xs) - min(xs)) / 2
    return all(math.hypot(x - cx, y - cy) < r for x, y in zip(s.points[0::3], s.points[1::3], strict=True))


MODEL_TASKS: dict[str, Callable[[Any, ModelServer], Awaitable[TaskResult]]] = {
    "tictactoe": tictactoe, "dots": connect_the_dots, "mirror": mirror,
}
"""The tasks a model does through the scripted Messages-API server (the MCP one needs no model)."""


async def run_all(server: Any, model_server: ModelServer) -> list[TaskResult]:
    """Every task, one after the other, against one server (the dots task restarts it)."""
    out = [await task(server, model_server) for task in MODEL_TASKS.values()]
    out.append(await circle_closed_shapes(server))
    return out
