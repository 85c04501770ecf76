"""Issue 19, item 7: the chat flood, as an attack for `bench/abuse.py` (`chat_flood`).

One edit link writes 8,000-character chat lines at about 2 MB/s from four sockets into one room
(before: such a flood filled a room to its 64 MiB limit in 36 s, after which nobody could draw,
even after a restart). Reported: what it sent, what the room's document holds afterwards, when
it filled up (or the time to 64 MiB at the rate it grew), whether another editor's stroke still
lands, and the database's size.

    .venv/bin/python bench/abuse.py --attacks chat_flood [--before REV]
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING

from canvas import Message, Stroke
from wire import protocol as p
from wire.client import CanvasClient

if TYPE_CHECKING:  # not at run time: bench/abuse.py imports this module
    from abuse import Ctx

MiB = 1 << 20

LINE = "x" * 8000
"""As long as a chat line may be (`canvas.schema.MAX_TEXT`)."""
RATE = 2 * 1000 * 1000
"""Bytes a second the flood aims for: the reproduction's."""
SOCKETS = 4
ROOM_LIMIT = 64 * MiB
"""The default `--max-doc-bytes`."""


async def attack_chat_flood(ctx: Ctx, seconds: float) -> str:
    room = "chatwall"
    edit = ctx.token("*", "edit")
    flooders = [await CanvasClient.connect(ctx.srv.ws_base, room, edit, name="flooder", reconnect=False) for _ in range(SOCKETS)]
    probe = await CanvasClient.connect(ctx.srv.ws_base, room, ctx.token("*", "view"), name="probe")
    sent = 0
    full_at: float | None = None
    t0 = time.monotonic()
    t_end = t0 + seconds
    pause = SOCKETS * len(LINE) / RATE
    while time.monotonic() < t_end:
        for f in flooders:
            if f.error is None:
                f.doc.post(Message(author="flooder", text=LINE))
                sent += len(LINE)
        with contextlib.suppress(Exception):
            await asyncio.gather(*(f.flush(5) for f in flooders if f.error is None))
        if full_at is None and any(f.error is not None and f.error.code == p.Close.ROOM_FULL for f in flooders):
            full_at = time.monotonic() - t0
        await asyncio.sleep(pause)
    elapsed = time.monotonic() - t0
    await asyncio.sleep(1.0)
    doc_bytes = len(probe.doc.doc.get_update())
    lines = len(probe.doc.messages())
    artist = await CanvasClient.connect(ctx.srv.ws_base, room, edit, name="artist", reconnect=False)
    t_draw = time.monotonic()
    artist.doc.add_strokes([Stroke(id="after-flood", points=[0, 0, 0.5, 10, 10, 0.5])])
    try:
        await probe.wait_for(lambda d: "after-flood" in d.stroke_ids(), 5)
        drawn = f"lands in {(time.monotonic() - t_draw) * 1000:.0f} ms"
    except TimeoutError:
        drawn = f"never lands ({artist.error.code if artist.error else 'no close'})"
    await asyncio.gather(*(c.close() for c in [*flooders, probe, artist]), return_exceptions=True)
    db = sum(f.stat().st_size for f in ctx.data.glob("inhabit.db*"))
    grew = doc_bytes / elapsed if elapsed else 0.0
    full = f"full after {full_at:.1f} s" if full_at is not None else (
        f"not full (grew {grew / 1024:.0f} KiB/s: 64 MiB in ~{ROOM_LIMIT / grew:.0f} s)" if grew > 100 * 1024 else "not full, not growing")
    return (f"{sent / MiB:.1f} MiB of 8000-char lines in {elapsed:.0f} s from {SOCKETS} sockets of one link: room holds "
            f"{doc_bytes / MiB:.2f} MiB ({lines} lines), {full}; another editor's stroke {drawn}; inhabit.db {db / MiB:.1f} MiB")
