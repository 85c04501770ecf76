"""Issue 19, item 4: a big room read by MCP sessions (`bench/abuse.py --attacks big_room_agent`).

The reproduction: in a room of 150 strokes x 10,000 points, each MCP execute parsed the whole
room on the event loop (0.4-0.7 s), a `view` took 5-11 s, and each MCP session held its own
~135 MB copy of the room; a bystander's p90 went from 2 ms to 374 ms.

    .venv/bin/python bench/abuse_view.py [--before REV]   # this tree (and REV), on its own; bench/abuse.py runs it with the others

`attack_big_room_agent` builds the room as an editor, then a view link's MCP session times a
trivial execute (its cost is the snapshot) and a `view`, and a second session's RSS is measured;
the bystander (bench/abuse.py) draws in another room meanwhile.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from canvas import Stroke
from wire.client import CanvasClient

if TYPE_CHECKING:
    from abuse import Ctx

MiB = 1 << 20
STROKES, POINTS = 150, 10_000
HANDSHAKE = "2025-06-18"


async def _build(ctx: Ctx, room: str) -> None:
    """An editor draws 150 scribbles of 10,000 points (in transactions under --max-message)."""
    rnd = random.Random(5)
    c = await CanvasClient.connect(ctx.srv.ws_base, room, ctx.token("*", "edit"), name="builder")
    try:
        for i in range(0, STROKES, 10):
            batch = []
            for j in range(i, i + 10):
                x, y, pts = rnd.uniform(0, 3000), rnd.uniform(0, 3000), []
                for _ in range(POINTS):
                    x, y = min(3000.0, max(0.0, x + rnd.uniform(-3, 3))), min(3000.0, max(0.0, y + rnd.uniform(-3, 3)))
                    pts += (x, y, 0.5)
                batch.append(Stroke(id=f"big{j}", points=pts, color="#2f9e44", width=3))
            c.doc.add_strokes(batch)
            await c.flush(timeout=120)
        await asyncio.sleep(0.5)
    finally:
        await c.close()


class _Session:
    """One MCP session in bare JSON-RPC over HTTP (the server answers in JSON)."""

    def __init__(self, http: httpx.AsyncClient, room: str, token: str) -> None:
        self.http, self.path, self.token = http, f"/rooms/{room}/mcp", token
        self.sid = ""
        self.n = 0

    def _headers(self) -> dict[str, str]:
        out = {"accept": "application/json, text/event-stream", "content-type": "application/json",
               "authorization": f"Bearer {self.token}", "mcp-protocol-version": HANDSHAKE}
        return {**out, "mcp-session-id": self.sid} if self.sid else out

    async def open(self, name: str) -> None:
        params = {"protocolVersion": HANDSHAKE, "capabilities": {}, "clientInfo": {"name": name, "version": "1"}}
        r = await self.http.post(self.path, json={"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": params},
                                 headers=self._headers())
        r.raise_for_status()
        self.sid = r.headers["mcp-session-id"]
        await self.http.post(self.path, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=self._headers())

    async def call(self, tool: str, args: dict[str, Any]) -> dict[str, Any]:
        self.n += 1
        r = await self.http.post(self.path, json={"jsonrpc": "2.0", "id": self.n, "method": "tools/call",
                                                  "params": {"name": tool, "arguments": args}}, headers=self._headers())
        r.raise_for_status()
        result: dict[str, Any] = r.json()["result"]
        return result

    async def close(self) -> None:
        if self.sid:
            await self.http.delete(self.path, headers=self._headers())


async def _median(call: Any, n: int = 3) -> float:
    await call()
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)


async def attack_big_room_agent(ctx: Ctx, seconds: float) -> str:
    """A view link's MCP sessions in a 150 x 10,000-point room: execute and view times, RSS per extra session."""
    from abuse import Bystander

    room = "bigroom"
    await _build(ctx, room)
    base = ctx.srv.ws_base.replace("ws://", "http://").removesuffix("/rooms")
    token = ctx.token("*", "view")
    stop, reading = asyncio.Event(), Bystander()  # a bystander of the reading phase alone (the build costs what it writes)
    probe = asyncio.create_task(reading.run(ctx, stop))
    async with httpx.AsyncClient(base_url=base, timeout=120) as http:
        await asyncio.sleep(0.5)
        before = ctx.srv.rss()
        first = _Session(http, room, token)
        await first.open("first")
        try:
            execute = await _median(lambda: first.call("execute", {"code": "1 + 1"}))
            t = time.perf_counter()
            shown = await first.call("view", {"size": 512})
            view = time.perf_counter() - t
            one = ctx.srv.rss() - before
            extra: list[float] = []
            others = []
            for k in range(3):
                s = _Session(http, room, token)
                others.append(s)
                at = ctx.srv.rss()
                await s.open(f"more{k}")
                await s.call("execute", {"code": "canvas.bounds()"})
                extra.append(ctx.srv.rss() - at)
            end = time.perf_counter() + max(0.0, seconds - 2)
            loops = 0
            while time.perf_counter() < end:  # the sessions keep reading while the bystander draws
                await first.call("execute", {"code": "canvas.strokes({box: {x0: 1000, y0: 1000, x1: 1200, y1: 1200}}).length"})
                loops += 1
            for s in others:
                await s.close()
        finally:
            await first.close()
            stop.set()
            await probe
    picture = "image" if any(c.get("type") == "image" for c in shown.get("content", [])) else f"no image: {str(shown)[:80]}"
    return (f"execute {execute * 1000:.0f} ms, view {view:.2f} s ({picture}); first session +{one / MiB:.0f} MiB, "
            f"each extra session +{statistics.median(extra) / MiB:.0f} MiB; {loops} box reads meanwhile; "
            f"bystander while reading: {reading.summary()}")


async def _main(before: str | None) -> None:
    import os
    import subprocess
    import tempfile

    import abuse
    from abuse import ROOT, Target, run_one

    abuse.ATTACKS["big_room_agent"] = attack_big_room_agent  # run alone, the way bench/abuse.py runs every attack
    os.environ.setdefault("INHABIT_QUICKJS_WASM", str(ROOT / "agent" / "sandbox" / "assets" / "quickjs.wasm"))  # an older tree has no built assets
    with tempfile.TemporaryDirectory() as tmp:
        targets = [Target("now", ROOT)]
        if before:
            tree = Path(tmp) / "before"
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(tree), before], check=True)
            targets.insert(0, Target(f"before ({before})", tree))
        try:
            for target in targets:
                row = await run_one(target, "big_room_agent", 8.0, Path(tmp))
                print(" | ".join(f"{k}: {v}" for k, v in row.items()), flush=True)
        finally:
            if before:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(Path(tmp) / "before")], check=False)


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[sys.argv.index("--before") + 1] if "--before" in sys.argv else None))
