"""Run records, for `bench/abuse.py` (issue 19, item 1): a view link's MCP sessions flood one room
with executes of 9,999 capability calls each (`canvas.stroke("A".repeat(380))`: one used to make a
4.6 MB record), close their sessions (so nothing of the room is held in memory), then `GET
/rooms/NAME/runs` is timed while the bench's bystander draws in another room.

    .venv/bin/python bench/abuse.py --attacks run_records [--before REV]
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import time
from typing import Any

import httpx
from abuse import INIT, MCP_HEADERS, Ctx

ROOM = "records"
LOOP = 'for (let i = 0; i < 9999; i++) canvas.stroke(i + "A".repeat(380)); "done"'
SESSIONS = 4
"""MCP sessions one link may hold in a room (`--mcp-token-sessions`)."""


def _answer(r: httpx.Response) -> Any:
    """The JSON-RPC answer of a streamable-HTTP POST: plain JSON, or the last `data:` of an SSE body."""
    if r.headers.get("content-type", "").startswith("text/event-stream"):
        data = [line[5:].strip() for line in r.text.splitlines() if line.startswith("data:")]
        return json.loads(data[-1]) if data else None
    return r.json()


async def _session(http: httpx.AsyncClient, token: str) -> str | None:
    r = await http.post(f"/rooms/{ROOM}/mcp", json=INIT, headers={**MCP_HEADERS, "authorization": f"Bearer {token}"})
    sid = r.headers.get("mcp-session-id")
    if r.status_code != 200 or not sid:
        return None
    await http.post(f"/rooms/{ROOM}/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"},
                    headers={**MCP_HEADERS, "authorization": f"Bearer {token}", "mcp-session-id": sid})
    return sid


async def _executes(http: httpx.AsyncClient, token: str, sid: str, until: float) -> tuple[int, list[str]]:
    """Executes of LOOP, one at a time, until `until`: how many answered, and their run ids."""
    runs: list[str] = []
    n = 0
    headers = {**MCP_HEADERS, "authorization": f"Bearer {token}", "mcp-session-id": sid}
    while time.perf_counter() < until:
        n += 1
        call = {"jsonrpc": "2.0", "id": n + 1, "method": "tools/call", "params": {"name": "execute", "arguments": {"code": LOOP}}}
        r = await http.post(f"/rooms/{ROOM}/mcp", json=call, headers=headers)
        got = _answer(r) if r.status_code == 200 else None
        text = ((got or {}).get("result") or {}).get("content") or []
        with contextlib.suppress(ValueError, KeyError, IndexError, TypeError):
            runs.append(json.loads(text[-1]["text"])["run"])
        if r.status_code == 429:
            await asyncio.sleep(1.0)
    await http.delete(f"/rooms/{ROOM}/mcp", headers=headers)  # the session ends: nothing of the room stays held for it
    return n, runs


async def attack_run_records(ctx: Ctx, seconds: float) -> str:
    """The flood for `seconds`, then 10 timed `GET /runs` (median, max) and the largest record's size."""
    base = ctx.srv.ws_base.replace("ws://", "http://").removesuffix("/rooms")
    token = ctx.token("*", "view")
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        sids = [sid for sid in await asyncio.gather(*(_session(http, token) for _ in range(SESSIONS))) if sid]
        until = time.perf_counter() + seconds
        done = await asyncio.gather(*(_executes(http, token, sid, until) for sid in sids))
        runs = [run for _, got in done for run in got]
        lists: list[float] = []
        body = 0
        for _ in range(10):
            t0 = time.perf_counter()
            r = await http.get(f"/rooms/{ROOM}/runs", params={"token": token, "limit": 200})
            lists.append(time.perf_counter() - t0)
            body = len(r.content)
        sizes = [len((await http.get(f"/rooms/{ROOM}/runs/{run}", params={"token": token})).content) for run in runs[-3:]]
    ms = sorted(x * 1000 for x in lists)
    return (f"{len(runs)} executes of 9999 calls recorded ({sum(n for n, _ in done) - len(runs)} refused), largest record "
            f"{max(sizes, default=0) / 1024:.0f} KiB; "
            f"GET /runs ({body / 1024:.0f} KiB): p50 {statistics.median(ms):.0f} ms, max {ms[-1]:.0f} ms")
