"""Hostile HTTP readers (issue 19, items 3 and 4), for `bench/abuse.py`: readers that never read
`GET /strokes` answers, and a link reading a big room's strokes over and over.

    .venv/bin/python bench/abuse.py --attacks unread_strokes,big_room_reads [--before REV]

Only `Ctx` comes from `abuse`, and only for the type checker: `abuse` imports this module.
"""

from __future__ import annotations

import asyncio
import random
import socket
import statistics
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from canvas import Stroke
from wire.client import CanvasClient

if TYPE_CHECKING:
    from abuse import Ctx

MiB = 1 << 20


async def _fill(ctx: Ctx, room: str, strokes: int, points: int = 10_000, digits: bool = True) -> None:
    """An editor draws `strokes` strokes of `points` points into `room` (`digits`: coordinates
    with all their digits, ~0.5 MB of JSON a stroke; else small whole numbers)."""
    rng = random.Random(7)
    c = await CanvasClient.connect(ctx.srv.ws_base, room, ctx.token("*", "edit"), name="filler")
    try:
        for k in range(strokes):
            if digits:
                pts = [v for _ in range(points) for v in (rng.uniform(-1000, 1000), rng.uniform(-1000, 1000), 0.5)]
            else:
                pts = [float(v) for j in range(points) for v in ((j + k) % 997, (j * 7) % 991, 0.5)]
            c.doc.add_strokes([Stroke(id=f"fill{k}", points=pts)])
            if k % 4 == 3:
                await c.flush()
        await c.flush()
    finally:
        await c.close()


def _http(ctx: Ctx) -> str:
    return ctx.srv.ws_base.replace("ws://", "http://").removesuffix("/rooms")


async def _held(ctx: Ctx, room: str, n: int, within: float = 120) -> None:
    """Wait until the server holds `n` strokes in `room` (a peer that joins receives them all)."""
    c = await CanvasClient.connect(ctx.srv.ws_base, room, ctx.token("*", "view"), name="counter")
    try:
        await c.wait_for(lambda: len(c.doc.stroke_ids()) >= n, within)
    finally:
        await c.close()


def _unread(port: int, path: str) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    return s


def _ended(s: socket.socket) -> bool:
    """The server ended the connection (asked of the kernel: reading would make us a reader)."""
    return s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0] != 1  # TCP_ESTABLISHED


async def attack_unread_strokes(ctx: Ctx, seconds: float) -> str:
    """12 `GET /rooms/big/strokes` from one view link on a ~40 MB room, never read (tiny receive
    windows): the server's RSS while they are open, and whether they are cut."""
    n = 80
    await _fill(ctx, "big", n)
    view = ctx.token("*", "view")
    async with httpx.AsyncClient(base_url=_http(ctx), timeout=120) as http:
        await _held(ctx, "big", n)
        size = len((await http.get("/rooms/big/strokes", params={"token": ctx.token("*", "edit")})).content)
        before = ctx.srv.rss()
        socks = [_unread(ctx.srv.port, f"/rooms/big/strokes?token={view}") for _ in range(12)]
        try:
            peak, t_end = before, time.monotonic() + max(seconds, 3.0)
            while time.monotonic() < t_end:
                peak = max(peak, ctx.srv.rss())
                await asyncio.sleep(0.1)
            open_ = sum(not _ended(s) for s in socks)
            started = time.monotonic()
            while any(not _ended(s) for s in socks) and time.monotonic() - started < 30:
                await asyncio.sleep(0.2)
            left = sum(not _ended(s) for s in socks)
        finally:
            for s in socks:
                s.close()
    cut = f"all ended {time.monotonic() - started + max(seconds, 3.0):.0f} s after sending" if not left else f"{left}/12 still open after 30 s more"
    return (f"12 unread answers of {size / MiB:.0f} MiB: server RSS +{(peak - before) / MiB:.0f} MiB while open "
            f"({12 - open_} refused or ended at once); {cut}")


async def _curl(url: str) -> tuple[int, float]:
    """Status and seconds of one read, by curl (so the figure is the server's, not a Python client's)."""
    t = time.perf_counter()
    proc = await asyncio.create_subprocess_exec("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", url, stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    return int(out or 0), time.perf_counter() - t


async def _probe(ctx: Ctx, stop: asyncio.Event) -> list[float]:
    """A bystander in another room while the reads run: ms from one peer's stroke to another's."""
    tok = ctx.token("*", "edit")
    a = await CanvasClient.connect(ctx.srv.ws_base, "probe", tok, name="a")
    b = await CanvasClient.connect(ctx.srv.ws_base, "probe", tok, name="b")
    lat: list[float] = []
    try:
        i = 0
        while not stop.is_set():
            sid, t = f"p{i}", time.perf_counter()
            a.doc.add_strokes([Stroke(id=sid, points=[i, i, 0.5])])
            await b.wait_for(lambda doc, sid=sid: doc.stroke(sid) is not None, 30)
            lat.append((time.perf_counter() - t) * 1000)
            i += 1
            await asyncio.sleep(0.05)
    finally:
        await asyncio.gather(a.close(), b.close(), return_exceptions=True)
    return lat


async def attack_big_room_reads(ctx: Ctx, seconds: float) -> str:
    """One view link reads `/strokes` of a 150-stroke x 10,000-point room, 4 at a time, for
    `seconds`: how long a read takes, and a bystander's latency in another room meanwhile."""
    n = 150
    await _fill(ctx, "huge", n, digits=False)
    await _held(ctx, "huge", n)
    url = f"{_http(ctx)}/rooms/huge/strokes?token={ctx.token('*', 'view')}"
    status, first_s = await _curl(url)
    times: list[float] = []
    statuses: dict[int, int] = {}
    stop = asyncio.Event()
    probe = asyncio.create_task(_probe(ctx, stop))
    await asyncio.sleep(0.5)
    t_end = time.monotonic() + seconds

    async def reader() -> None:
        while time.monotonic() < t_end:
            code, took = await _curl(url)
            statuses[code] = statuses.get(code, 0) + 1
            if code == 200:
                times.append(took)
            else:
                await asyncio.sleep(1.0)

    await asyncio.gather(*(reader() for _ in range(4)))
    stop.set()
    lat = sorted(await probe)
    by = f"p50 {statistics.median(lat):.0f} ms, p90 {lat[int(0.9 * (len(lat) - 1))]:.0f} ms" if lat else "no sample"
    med = f"median {statistics.median(times):.2f} s" if times else "none answered"
    return f"/strokes: first {first_s:.2f} s ({status}), then {med} over {len(times)} reads, 4 at a time {statuses}; bystander while reading {by}"
