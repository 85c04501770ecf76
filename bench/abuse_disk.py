"""Issue 19, item 6 (disk grows without end), as an attack for `bench/abuse.py`: one `'*'` edit
link, several rooms, each filled and then rewritten over and over, so every compaction keeps a
version of a multi-MiB document; how big the data folder gets in N seconds, against the budget.

The attack starts a server of its own (the target's tree, the same way `abuse.py` does) with
`INHABIT_DATA_BYTES` and `INHABIT_DISK_SWEEP_S` in its environment: a tree from before the budget
ignores them (unknown settings), so the before/after rows compare like with like.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from abuse import Ctx, MiB

from canvas import Stroke
from common.disk import folder_bytes
from wire.client import CanvasClient

BUDGET = 96 * MiB
ROOMS = 6
FILL_STROKES = 16  # x ~0.27 MiB each (10,000 points of float64s): a ~4 MiB document per room
POINTS = 10_000


def _stroke(sid: str, salt: int) -> Stroke:
    return Stroke(id=sid, points=[v for j in range(POINTS) for v in ((j * 0.37 + salt) % 997.3, (j * 7.1) % 991.7, 0.55)])


async def _churn(ws_base: str, token: str, room: str, until: float) -> int:
    """Fill `room`, then erase and redraw one big stroke until `until`: each pass is ~0.27 MiB of
    updates, so a compaction (and a kept version of the whole document) comes every dozen passes."""
    c = await CanvasClient.connect(ws_base, room, token, name="disk")
    n = 0
    try:
        for k in range(FILL_STROKES):
            c.doc.add_strokes([_stroke(f"fill{k}", k)])
            await c.flush(30)
        while time.monotonic() < until:
            if c.doc.stroke("churn"):
                c.doc.erase(["churn"])
            c.doc.add_strokes([_stroke("churn", n)])
            n += 1
            await c.flush(30)
    finally:
        await c.close()
    return n


def _on_disk(data: Path) -> int:
    return sum(f.stat().st_size for f in data.rglob("*") if f.is_file())


async def attack_disk(ctx: Ctx, seconds: float) -> str:
    """One `'*'` edit link rewriting big strokes in several rooms: data folder growth vs `--data-bytes`."""
    data = ctx.data.parent / f"{ctx.data.name}-disk"
    saved = {k: os.environ.get(k) for k in ("INHABIT_DATA_BYTES", "INHABIT_DISK_SWEEP_S")}
    os.environ.update(INHABIT_DATA_BYTES=str(BUDGET), INHABIT_DISK_SWEEP_S="1")
    try:
        srv = ctx.target.start(data)
    finally:
        for k, v in saved.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    try:
        token = ctx.target.token(data, "*", "edit")
        until = time.monotonic() + max(seconds, 6.0)
        t0 = time.monotonic()
        passes = await asyncio.gather(*(_churn(srv.ws_base, token, f"disk{i}", until) for i in range(ROOMS)))
        took = time.monotonic() - t0
        peak_disk = _on_disk(data)
        await asyncio.sleep(5.0)  # a few sweeps (the budget's tree sweeps every second; a sweep under this load takes ~1 s)
        live, disk = folder_bytes(data), _on_disk(data)
    finally:
        srv.stop()
    return (f"{ROOMS} rooms x {sum(passes) // ROOMS} rewrites of 0.27 MiB in a ~4 MiB document in {took:.0f} s: data folder {disk / MiB:.0f} MiB on disk "
            f"({live / MiB:.0f} MiB live, {peak_disk / MiB:.0f} MiB on disk at the end of the writes); budget {BUDGET / MiB:.0f} MiB")
