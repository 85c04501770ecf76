"""`attack_behaviour_cpu` for bench/abuse.py (issue 19 item 5): busy behaviours of one '*' edit
link in 4 empty rooms, and another room's behaviour reaction meanwhile.

Behaviours are installed by a model, so this attack starts its own server from the target's tree
with the tests' scripted Messages-API server playing the model (`ctx.srv`, which has no model,
is left alone: the row's bystander column is not this attack's figure; its result line is).
The server runs with its default budgets, so `--before` shows the unbounded figure.
`bench/abuse.py --attacks behaviour_cpu` runs it (~40 s whatever `--seconds` says: installs, the
first schedules, a 20-s window).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
for _p in (ROOT, ROOT / "bench", ROOT / "tests"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from _servers import PY, Server, free_port  # noqa: E402

from canvas import Stroke, new_id  # noqa: E402
from wire.client import CanvasClient  # noqa: E402

from support.model_server import ModelServer  # noqa: E402

if TYPE_CHECKING:
    from abuse import Ctx

BURN_JS = "let x = 0; for (let i = 0; i < 2000000; i++) x += i % 7; x"
"""~0.2 s of CPU per firing (the issue's ~0.6 s meets the 2-s run timeout on a loaded machine: failures pause them)."""
ECHO_JS = "for (const s of event.strokes ?? []) canvas.draw({points: [[s.bbox.x0, s.bbox.y1 + 8], [s.bbox.x1, s.bbox.y1 + 8]]}); 1"
ROOMS = 4
PER_ROOM = 8


async def _install(http: httpx.AsyncClient, ms: ModelServer, room: str, token: str, programs: dict[str, tuple[str, list[Any]]]) -> None:
    turns: list[dict[str, Any]] = [{"tool": "execute", "input": {"code": code, "on": on, "name": name}} for name, (code, on) in programs.items()]
    ms.script(room, [*turns, {"text": "ok"}])
    r = await http.post(f"/rooms/{room}/prompts", json={"text": "@agent install"}, headers={"authorization": f"Bearer {token}"})
    run = r.json()["run"]
    deadline = time.monotonic() + 120
    while (await http.get(f"/rooms/{room}/runs/{run}", params={"token": token})).json()["status"] not in ("done", "failed"):
        if time.monotonic() > deadline:
            raise TimeoutError(f"installing in {room}")
        await asyncio.sleep(0.1)


async def _reactions(person: CanvasClient, samples: int) -> list[float]:
    """Milliseconds from a stroke drawn to the behaviour's answering stroke, `samples` times."""
    out = []
    for i in range(samples):
        before = {s.id for s in person.doc.strokes() if s.behaviour}
        t0 = time.perf_counter()
        person.doc.add_strokes([Stroke(id=new_id("v"), points=[10.0 * i, 10.0, 0.5, 10.0 * i + 5, 20.0, 0.5], author="victim")])
        await person.wait_for(lambda doc, seen=before: {s.id for s in doc.strokes() if s.behaviour} - seen, 30)
        out.append((time.perf_counter() - t0) * 1e3)
        await asyncio.sleep(0.2)
    return out


async def attack_behaviour_cpu(ctx: Ctx, seconds: float) -> str:
    """8 behaviours `every: 5` burning ~0.2 s each, installed by one '*' edit link in each of 4 rooms
    nobody is in; over 20 s (at least): the cores the server used, and another room's behaviour
    reaction (a stroke -> its echo) against its quiet time."""
    window = max(seconds, 20.0)
    data = ctx.data.parent / f"{ctx.data.name}-bcpu"
    ms = ModelServer().start()
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ctx.target.tree), "PYTHONUNBUFFERED": "1", "PYTHONSAFEPATH": "1",
           "ANTHROPIC_BASE_URL": ms.url, "ANTHROPIC_API_KEY": "bench", "INHABIT_MODEL": "scripted", "INHABIT_MAX_TURNS": str(PER_ROOM + 2)}
    cmd = [str(PY), "-m", ctx.target.module, "serve", "--host", "127.0.0.1", "--port", str(port), "--data", str(data)]
    srv = Server("ours", cmd, env, port, f"ws://127.0.0.1:{port}/rooms", data.parent / f"bcpu-{port}.log")
    try:
        srv.start()
        star, victim_tok = ctx.target.token(data, "*", "edit"), ctx.target.token(data, "victim", "edit")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            victim = await CanvasClient.connect(srv.ws_base, "victim", victim_tok, name="victim")
            try:
                await _install(http, ms, "victim", victim_tok, {"echo": (ECHO_JS, ["stroke"])})
                await _reactions(victim, 3)
                quiet = statistics.median(await _reactions(victim, 9))
                for r in range(ROOMS):
                    await _install(http, ms, f"busy{r}", star, {f"burn{i}": (BURN_JS, [{"every": 5}]) for i in range(PER_ROOM)})
                await asyncio.sleep(6.0)  # the first schedules are due
                t0, cpu0 = time.monotonic(), srv.cpu_seconds()
                loud: list[float] = []
                while time.monotonic() - t0 < window:
                    loud += await _reactions(victim, 1)
                cores = (srv.cpu_seconds() - cpu0) / (time.monotonic() - t0)
                listed = [(await http.get(f"/rooms/busy{r}/behaviours", params={"token": star})).json()["behaviours"] for r in range(ROOMS)]
            finally:
                await victim.close()
        paused = sum(1 for bs in listed for b in bs if b["status"] != "active")
        loud.sort()
        return (f"{ROOMS} rooms x {PER_ROOM} behaviours (every 5 s, ~0.2 s CPU each) of one '*' link: {cores:.2f} cores over {window:.0f} s "
                f"({paused} paused); another room's behaviour reaction p50 {statistics.median(loud):.0f} ms (quiet {quiet:.0f} ms), "
                f"max {loud[-1]:.0f} ms")
    finally:
        srv.stop()
        ms.stop()
