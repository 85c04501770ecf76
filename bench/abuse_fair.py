"""Attacks on the shared sandbox and renderer (issue 19 item 2), for `bench/abuse.py`.

`attack_sandbox_share`: four MCP sessions of one view link loop `while(true){}`; a victim in
another room runs a trivial execute. `attack_render_queue`: one view link keeps 20 `view`s of a
large room queued; a victim views a small room. Each returns the victim's quiet and
under-attack latency (median, max) and what the attacker got. MCP is spoken with the official
SDK's client, as the tests do (tests/support/mcp_helpers.py).
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING

import httpx2
import mcp_types as types
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from canvas import Stroke
from wire.client import CanvasClient

if TYPE_CHECKING:  # run from bench/abuse.py, which puts bench/ and the checkout on sys.path
    from abuse import Ctx


def _http_base(ctx: Ctx) -> str:
    return ctx.srv.ws_base.replace("ws://", "http://").removesuffix("/rooms")


@asynccontextmanager
async def _mcp(ctx: Ctx, room: str, token: str, name: str) -> AsyncIterator[Client]:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=httpx2.Timeout(30, read=600))
    transport = streamable_http_client(f"{_http_base(ctx)}/rooms/{room}/mcp", http_client=http)
    async with http, Client(transport, client_info=types.Implementation(name=name, version="1.0")) as client:
        yield client


def _text(result: types.CallToolResult) -> str:
    return " ".join(c.text for c in result.content if isinstance(c, types.TextContent))


CALL_CAP_S = 30.0
"""A victim's call still unanswered after this long is counted at this long (the old renderer queue took minutes)."""


async def _timed(call: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(call(), CALL_CAP_S)
    except TimeoutError:
        pass
    return (time.perf_counter() - started) * 1e3


def _figure(quiet: list[float], attacked: list[float]) -> str:
    if not attacked:
        return f"victim quiet p50 {statistics.median(quiet):.0f} ms, nothing answered under attack"
    return (f"victim quiet p50 {statistics.median(quiet):.0f} ms, under attack p50 {statistics.median(attacked):.0f} ms "
            f"max {max(attacked):.0f} ms ({len(attacked)} calls)")


async def _victim_loop(call: Callable[[], Awaitable[object]], until: float, gap_s: float = 0.2) -> list[float]:
    out = []
    while time.monotonic() < until:
        out.append(await _timed(call))
        await asyncio.sleep(gap_s)
    return out


async def attack_sandbox_share(ctx: Ctx, seconds: float) -> str:
    """Four MCP sessions of one view link loop `while(true){}`; another room's trivial execute."""
    hog_token = ctx.target.token(ctx.data, "hog", "view")
    async with AsyncExitStack() as stack:
        victim = await stack.enter_async_context(_mcp(ctx, "victim", ctx.target.token(ctx.data, "victim", "view"), "victim"))

        async def trivial() -> None:
            await victim.call_tool("execute", {"code": "1 + 1"})

        for _ in range(3):
            await trivial()
        quiet = [await _timed(trivial) for _ in range(7)]
        hogs = [await stack.enter_async_context(_mcp(ctx, "hog", hog_token, f"hog{i}")) for i in range(4)]
        until = time.monotonic() + seconds
        answers: list[str] = []

        async def hog(client: Client) -> None:
            while time.monotonic() < until:
                answers.append(_text(await client.call_tool("execute", {"code": "while (true) {}"})))

        attack = [asyncio.create_task(hog(h)) for h in hogs]
        attacked = await _victim_loop(trivial, until)
        await asyncio.gather(*attack, return_exceptions=True)
    timeouts = sum('"timeout"' in a for a in answers)
    refused = sum("CPU-seconds" in a for a in answers)
    rate = sum("too many calls" in a for a in answers)
    other = next((a for a in answers if '"timeout"' not in a and "too many" not in a), "")
    return (f"{_figure(quiet, attacked)}; hog: {timeouts} runs to the timeout, {refused} refused for CPU, {rate} for the call rate, "
            f"of {len(answers)}; other: {other[:150]}")


async def _fill(ctx: Ctx, room: str, strokes: list[Stroke]) -> None:
    c = await CanvasClient.connect(ctx.srv.ws_base, room, ctx.token("*", "edit"), name="filler")
    c.doc.add_strokes(strokes)
    await c.flush()
    await asyncio.sleep(0.5)
    await c.close()


async def attack_render_queue(ctx: Ctx, seconds: float) -> str:
    """One view link keeps 20 `view`s of a large room queued; another room's small `view`."""
    rnd = random.Random(7)
    await _fill(ctx, "big", [Stroke(id=f"s{i}", points=[c for _ in range(400) for c in (rnd.uniform(0, 3000), rnd.uniform(0, 3000), 0.5)],
                                    color=f"#{rnd.randrange(1 << 24):06x}", width=rnd.uniform(2, 8)) for i in range(100)])
    await _fill(ctx, "small", [Stroke(id="line", points=[0, 0, 0.5, 300, 200, 0.5], width=4)])
    figure, drawn, refused = "", 0, 0
    try:
        async with AsyncExitStack() as stack:
            victim = await stack.enter_async_context(_mcp(ctx, "small", ctx.target.token(ctx.data, "small", "view"), "victim"))
            hog = await stack.enter_async_context(_mcp(ctx, "big", ctx.target.token(ctx.data, "big", "view"), "hog"))

            async def look() -> None:
                await victim.call_tool("view", {"size": 400})

            for _ in range(3):
                await look()
            quiet = [await _timed(look) for _ in range(7)]
            until = time.monotonic() + seconds
            answers: list[str] = []

            async def one_view() -> None:
                while time.monotonic() < until:  # 20 kept queued: each re-issued as soon as it is answered
                    out = await hog.call_tool("view", {"size": 1024})
                    answers.append("drawn" if not out.is_error else _text(out))

            attack = [asyncio.create_task(one_view()) for _ in range(20)]
            await asyncio.sleep(0.2)
            attacked = await _victim_loop(look, until)
            figure = _figure(quiet, attacked)
            drawn, refused = answers.count("drawn"), sum("CPU-seconds" in a for a in answers)
            await asyncio.wait(attack, timeout=30)  # the hog's views still queued are left behind
            for task in attack:
                task.cancel()
    except Exception as e:  # leaving with the hog's calls in flight: the SDK's client may complain
        if not figure:
            raise
        figure += f" (leaving: {type(e).__name__})"
    return f"{figure}; hog: {drawn} drawn, {refused} refused for CPU (20 kept queued)"
