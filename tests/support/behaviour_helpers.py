"""Helpers shared by the behaviour tests: the programs a scripted model "writes" (the product has
no game code: the player below is test data, generic geometry over raw strokes), and HTTP
helpers for the behaviour routes of a live server (tests/support/live_server.py's LiveServer)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Any

import httpx

from canvas import Stroke, new_id

from support.agent_helpers import cell_box, cell_of

PLAYER_JS = r"""
// Plays O on a hand-drawn 3x3 board: one move per X a person completes (an X is two strokes).
const mid = (a, b) => (a + b) / 2;
const center = s => [mid(s.bbox.x0, s.bbox.x1), mid(s.bbox.y0, s.bbox.y1)];
if (!state.grid) {
  const info = canvas.strokes({kind: 'human'}).map(s => ({s, w: s.bbox.x1 - s.bbox.x0, h: s.bbox.y1 - s.bbox.y0}));
  const longest = Math.max(...info.map(i => Math.max(i.w, i.h)));
  const vert = info.filter(i => i.h > 0.6 * longest && i.w < 0.2 * i.h);
  const horiz = info.filter(i => i.w > 0.6 * longest && i.h < 0.2 * i.w);
  if (vert.length !== 2 || horiz.length !== 2) throw new Error(`no board: ${vert.length} vertical and ${horiz.length} horizontal lines`);
  const xs = vert.map(i => mid(i.s.bbox.x0, i.s.bbox.x1)).sort((a, b) => a - b);
  const ys = horiz.map(i => mid(i.s.bbox.y0, i.s.bbox.y1)).sort((a, b) => a - b);
  state.grid = {
    X: [Math.min(...horiz.map(i => i.s.bbox.x0)), xs[0], xs[1], Math.max(...horiz.map(i => i.s.bbox.x1))],
    Y: [Math.min(...vert.map(i => i.s.bbox.y0)), ys[0], ys[1], Math.max(...vert.map(i => i.s.bbox.y1))],
    lines: [...vert, ...horiz].map(i => i.s.id),
  };
  state.board = Array(9).fill('');
}
const {X, Y, lines} = state.grid;
const cellAt = ([x, y]) => {
  for (let r = 0; r < 3; r++) for (let c = 0; c < 3; c++) if (x > X[c] && x < X[c + 1] && y > Y[r] && y < Y[r + 1]) return r * 3 + c;
  return -1;
};
const inCell = Array(9).fill(0);
for (const s of canvas.strokes()) {
  if (lines.includes(s.id) || s.behaviour === behaviour.id) continue;
  const k = cellAt(center(s));
  if (k >= 0) inCell[k]++;
}
const board = state.board;
for (let k = 0; k < 9; k++) if (!board[k] && inCell[k] >= 2) board[k] = 'X';
const LINES = [[0, 1, 2], [3, 4, 5], [6, 7, 8], [0, 3, 6], [1, 4, 7], [2, 5, 8], [0, 4, 8], [2, 4, 6]];
const winner = b => { const l = LINES.find(l => b[l[0]] && l.every(k => b[k] === b[l[0]])); return l ? b[l[0]] : ''; };
const free = [...Array(9).keys()].filter(k => !board[k]);
const completes = v => free.find(k => winner(board.map((m, i) => (i === k ? v : m))) === v);
const drawing = inCell.some((n, k) => n === 1 && !board[k]);
let moved = null;
if (!winner(board) && free.length && !drawing && board.filter(m => m === 'X').length > board.filter(m => m === 'O').length) {
  const k = completes('O') ?? completes('X') ?? [4, 0, 2, 6, 8, 1, 3, 5, 7].find(k => !board[k]);
  const r = Math.floor(k / 3), c = k % 3;
  const cx = mid(X[c], X[c + 1]), cy = mid(Y[r], Y[r + 1]), rad = 0.3 * Math.min(X[c + 1] - X[c], Y[r + 1] - Y[r]);
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

ECHO_JS = r"""
// Underlines every new stroke, a little wobbly (Math.random) and timestamped in its state (Date.now).
for (const s of event.strokes ?? []) {
  const b = s.bbox, y = b.y1 + 10 + 5 * Math.random();
  canvas.draw({points: [[b.x0, y], [b.x1, y + 3 * Math.random()]], color: '#d12d2d'});
}
state.seen = (state.seen ?? 0) + (event.strokes?.length ?? 0);
state.at = Date.now();
({seen: state.seen})
"""


def install_script(code: str, on: list, name: str, reply: str = "It is running.") -> list[dict]:
    """A model that answers with ONE execute carrying `on` (and `name`), then a reply."""
    return [{"tool": "execute", "input": {"code": code, "on": on, "name": name}}, {"text": reply}]


def x_strokes(r: int, c: int, author: str = "alice") -> list[Stroke]:
    """An X (two crossing strokes) in cell (r, c) of the helpers' board."""
    x0, y0, x1, y1 = cell_box(r, c)
    m = 0.25 * (x1 - x0)

    def line(ax: float, ay: float, bx: float, by: float) -> list[float]:
        return [v for i in range(12) for v in (ax + (bx - ax) * i / 11, ay + (by - ay) * i / 11 + math.sin(i) * 1.5, 0.5)]

    return [Stroke(id=new_id("x"), points=line(x0 + m, y0 + m, x1 - m, y1 - m), author=author),
            Stroke(id=new_id("x"), points=line(x1 - m, y0 + m, x0 + m, y1 - m), author=author)]


def cell_of_stroke(s: Stroke) -> tuple[int, int] | None:
    """The board cell all of a stroke's points lie in (None if they do not share one)."""
    cells = {cell_of(x, y) for x, y in s.xy()}
    return cells.pop() if len(cells) == 1 else None


# ---- judging a game of tic-tac-toe by the room's strokes ------------------------------------------

LINES = [(0, 1, 2), (3, 4, 5), (6, 7, 8), (0, 3, 6), (1, 4, 7), (2, 5, 8), (0, 4, 8), (2, 4, 6)]


def winner(board: dict[int, str]) -> str:
    for a, b, c in LINES:
        if board.get(a) and board.get(a) == board.get(b) == board.get(c):
            return board[a]
    return ""


def human_move(board: dict[int, str]) -> int:
    """The person's move: win, else block, else the first free cell (so the game lasts)."""
    free = [k for k in range(9) if k not in board]
    for mark in ("X", "O"):
        for k in free:
            if winner({**board, k: mark}) == mark:
                return k
    return free[0]


def marks(strokes: list[Stroke], bid: str, to_board: Callable[[Stroke], Stroke] = lambda s: s) -> dict[int, str]:
    """The board as the strokes show it: cells holding an O of the behaviour, or an X (two strokes).
    `to_board`: the stroke in the helpers' board coordinates (e.g. un-rotated)."""
    board: dict[int, str] = {}
    xs: dict[int, int] = {}
    for s in strokes:
        cell = cell_of_stroke(to_board(s))
        if cell is None:
            continue
        k = cell[0] * 3 + cell[1]
        if s.behaviour == bid:
            board[k] = "O"
        elif s.kind == "human":
            xs[k] = xs.get(k, 0) + 1
    board.update({k: "X" for k, n in xs.items() if n >= 2})
    return board


def get(server: Any, path: str, role: str = "view", room: str = "*") -> httpx.Response:
    return httpx.get(f"{server.http}{path}", params={"token": server.token(room, role)}, timeout=10)


def post(server: Any, path: str, role: str = "edit", room: str = "*") -> httpx.Response:
    return httpx.post(f"{server.http}{path}", params={"token": server.token(room, role)}, timeout=30)


def behaviours(server: Any, room: str) -> list[dict]:
    r = get(server, f"/rooms/{room}/behaviours")
    r.raise_for_status()
    return r.json()["behaviours"]


async def wait_behaviour(server: Any, room: str, pred: Any, timeout: float = 20) -> dict:
    """The first behaviour of the room for which `pred(b)` holds, polling until `timeout`."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = [b for b in behaviours(server, room) if pred(b)]
        if found:
            return found[0]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"no such behaviour in {timeout}s: {behaviours(server, room)}")
        await asyncio.sleep(0.1)
