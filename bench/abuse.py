"""Hostile peers, before/after: each attack runs for a few seconds against a fresh server, and
we print the server's RSS, a bystander's latency in another room, and what the attacker got.

    .venv/bin/python bench/abuse.py                      # this tree only
    .venv/bin/python bench/abuse.py --before bbe0012     # and the same attacks on an older commit

`--before REV` checks REV out into a temporary git worktree and runs its server the same way
(`python -m inhabit serve`, or `python -m server serve` for trees from before the layout
change). Every attack uses a VIEW token unless it says otherwise; every loop is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _servers import PY, ROOT, Server, free_port

from canvas import Message, Stroke
from wire import protocol as p
from wire.client import CanvasClient

MiB = 1 << 20


# ---- the server under test ------------------------------------------------------------------


@dataclass
class Target:
    label: str
    tree: Path

    @property
    def module(self) -> str:
        return "inhabit" if (self.tree / "inhabit" / "__main__.py").exists() else "server"

    def start(self, data: Path) -> Server:
        port = free_port()
        # PYTHONSAFEPATH: the server runs from this checkout; its own tree must win over the cwd
        env = {**os.environ, "PYTHONPATH": str(self.tree), "PYTHONUNBUFFERED": "1", "PYTHONSAFEPATH": "1"}
        env.pop("ANTHROPIC_API_KEY", None)  # prompts fail fast with "no model access": no model calls
        if not (self.tree / "agent" / "sandbox" / "assets" / "quickjs.wasm").is_file():  # an older tree, never built
            env["INHABIT_QUICKJS_WASM"] = str(ROOT / "agent" / "sandbox" / "assets" / "quickjs.wasm")
        cmd = [str(PY), "-m", self.module, "serve", "--host", "127.0.0.1", "--port", str(port), "--data", str(data)]
        srv = Server("ours", cmd, env, port, f"ws://127.0.0.1:{port}/rooms", data.parent / f"{self.label}-{port}.log")
        srv.start()
        return srv

    def token(self, data: Path, room: str, role: str) -> str:
        out = subprocess.run([str(PY), "-m", self.module, "token", room, "--role", role, "--data", str(data)],
                             cwd=self.tree, env={**os.environ, "PYTHONPATH": str(self.tree)}, capture_output=True, text=True, check=True, timeout=60)
        return out.stdout.strip().splitlines()[-1]


@dataclass
class Ctx:
    target: Target
    srv: Server
    data: Path
    http: str = ""
    tokens: dict[tuple[str, str], str] = field(default_factory=dict)

    def token(self, room: str = "*", role: str = "view") -> str:
        if (room, role) not in self.tokens:
            self.tokens[room, role] = self.target.token(self.data, room, role)
        return self.tokens[room, role]

    def url(self, room: str, role: str = "view") -> str:
        return f"{self.srv.ws_base}/{room}?token={self.token('*', role)}"


# ---- the bystander: two clients in another room, one stroke every 100 ms --------------------


class Bystander:
    """Measures how long a stroke takes from one bystander to another while an attack runs."""

    def __init__(self) -> None:
        self.lat: list[float] = []
        self.sent: dict[str, float] = {}
        self.lost = 0

    async def run(self, ctx: Ctx, stop: asyncio.Event) -> None:
        tok = ctx.token("*", "edit")
        a = await CanvasClient.connect(ctx.srv.ws_base, "bystander", tok, name="a")
        b = await CanvasClient.connect(ctx.srv.ws_base, "bystander", tok, name="b")
        seen: set[str] = set()

        def arrived() -> None:
            now = time.perf_counter()
            for sid in b.doc.stroke_ids():
                if sid not in seen and sid in self.sent:
                    seen.add(sid)
                    self.lat.append(now - self.sent[sid])

        b.on_change(arrived)
        try:
            i = 0
            while not stop.is_set():
                sid = f"by{i}"
                self.sent[sid] = time.perf_counter()
                a.doc.add_strokes([Stroke(id=sid, points=[i, i, 0.5, i + 5, i + 5, 0.5])])
                i += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.1)
            await asyncio.sleep(1.0)
            self.lost = len(self.sent) - len(seen)
        finally:
            await asyncio.gather(a.close(), b.close(), return_exceptions=True)

    def summary(self) -> str:
        if not self.lat:
            return f"no stroke arrived ({len(self.sent)} sent)"
        ms = sorted(x * 1000 for x in self.lat)
        p99 = ms[min(len(ms) - 1, int(0.99 * len(ms)))]
        lost = f", {self.lost} late/lost" if self.lost else ""
        return f"p50 {statistics.median(ms):.0f} ms, p99 {p99:.0f} ms, max {ms[-1]:.0f} ms{lost}"


# ---- attacks -------------------------------------------------------------------------------


async def _close_code(ws: websockets.ClientConnection, wait: float) -> str:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(ws.wait_closed(), wait)
    if ws.close_code is None:
        return "still open"
    return f"closed {ws.close_code} {ws.close_reason[:60]!r}"


async def _fill_room(ctx: Ctx, room: str, mib: float) -> None:
    """An editor writes about `mib` MiB of strokes into `room`."""
    c = await CanvasClient.connect(ctx.srv.ws_base, room, ctx.token("*", "edit"), name="filler")
    n = max(1, int(mib * MiB / (9000 * 3 * 9)))
    for k in range(n):
        pts = [float(v) for j in range(9000) for v in (j % 997, (j * 7) % 991, 0.5)]
        c.doc.add_strokes([Stroke(id=f"fill{k}", points=pts)])
    await c.flush()
    await asyncio.sleep(0.5)
    await c.close()


async def attack_sync(ctx: Ctx, seconds: float) -> str:
    """500 SyncStep1 with random state vectors to a 4 MB room, from a client that never reads."""
    await _fill_room(ctx, "big", 4)
    ws = await websockets.connect(ctx.url("big"), max_size=None, max_queue=1)
    sent = 0
    t_end = time.monotonic() + seconds
    try:
        for _ in range(500):
            if time.monotonic() > t_end:
                break
            sv = p.write_var_uint(1) + p.write_var_uint(random.getrandbits(32)) + p.write_var_uint(random.randint(1, 1 << 20))
            await asyncio.wait_for(ws.send(p.sync_step1(sv)), 1.0)
            sent += 1
    except (TimeoutError, websockets.ConnectionClosed):
        pass
    got = await _close_code(ws, max(0.5, t_end - time.monotonic()))
    await ws.close()
    return f"sent {sent} SyncStep1; {got}"


async def attack_stale(ctx: Ctx, seconds: float) -> str:
    """50 viewers stop reading; an editor then writes 8 MB into their room (more than the
    kernel's socket buffers absorb, so the server has to hold or drop it)."""
    viewers = [await websockets.connect(ctx.url("stale"), max_size=None, max_queue=1) for _ in range(50)]
    await _fill_room(ctx, "stale", 8)
    await asyncio.sleep(seconds)
    port = ctx.srv.port
    held = sum(1 for c in ctx.srv.proc.net_connections() if c.laddr and c.laddr.port == port and c.status == psutil.CONN_ESTABLISHED)
    closed = sum(1 for v in viewers if v.close_code is not None)
    for v in viewers:
        v.transport.abort()
    return f"{closed}/50 told to close; server holds {held} sockets on its port"


async def attack_presence(ctx: Ctx, seconds: float) -> str:
    """20 awareness states of 1 MB each and 100,000 client ids, then a newcomer joins."""
    ws = await websockets.connect(ctx.url("presence"), max_size=None)
    blob = json.dumps({"user": {"name": "x" * MiB}})
    try:
        for i in range(20):
            await ws.send(p.awareness_message(p.encode_awareness([(10_000 + i, 1, blob)])))
        ids = [(200_000 + i, 1, "{}") for i in range(100_000)]
        for k in range(0, len(ids), 20_000):
            await ws.send(p.awareness_message(p.encode_awareness(ids[k:k + 20_000])))
    except websockets.ConnectionClosed:
        pass
    await asyncio.sleep(min(seconds, 2.0))
    got = await _close_code(ws, 0.5)
    greeting = 0
    async with websockets.connect(ctx.url("presence"), max_size=None) as newcomer:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(3):
                while True:
                    frame = await newcomer.recv()
                    if isinstance(frame, bytes) and frame[:1] == bytes([p.MSG_AWARENESS]):
                        greeting += len(frame)
                        break
    await ws.close()
    return f"attacker {got}; newcomer's presence greeting {greeting / MiB:.1f} MiB"


async def attack_prompts(ctx: Ctx, seconds: float) -> str:
    """A lone surrogate in a prompt, then 300 prompts from one view token."""
    tok = ctx.token("*", "view")
    async with httpx.AsyncClient(base_url=ctx.srv.ws_base.replace("ws://", "http://").removesuffix("/rooms"), timeout=10) as http:
        bad = await http.post("/rooms/pr/prompts", params={"token": tok}, content=b'{"text": "@agent hi \\udc00", "author": "Alice (room owner)"}',
                              headers={"content-type": "application/json"})
        runs = await http.get("/rooms/pr/runs", params={"token": tok})
        statuses: dict[int, int] = {}
        t_end = time.monotonic() + seconds
        for i in range(300):
            if time.monotonic() > t_end:
                break
            r = await http.post("/rooms/flood/prompts", params={"token": tok}, json={"text": f"@agent draw {i}", "author": "Alice (room owner)"})
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
        await asyncio.sleep(1.0)
        c = await CanvasClient.connect(ctx.srv.ws_base, "flood", tok, name="counter")
        messages = len(c.doc.messages())
        await c.close()
    return f"surrogate prompt -> {bad.status_code}, then GET /runs -> {runs.status_code}; flood statuses {statuses}; chat holds {messages} messages"


async def attack_rewrite(ctx: Ctx, seconds: float) -> str:
    """An editor rewrites one 1 MiB value over and over: does the database grow with history?"""
    c = await CanvasClient.connect(ctx.srv.ws_base, "rewrite", ctx.token("*", "edit"), name="rewriter")
    pts = [float(v) for j in range(9000) for v in (j % 997, (j * 7) % 991, 0.5)]
    n = 0
    t_end = time.monotonic() + seconds
    while time.monotonic() < t_end and n < 200:
        c.doc.erase(["big"]) if c.doc.stroke("big") else None
        c.doc.add_strokes([Stroke(id="big", points=pts)])
        n += 1
        await c.flush()
        await asyncio.sleep(0.01)
    await asyncio.sleep(1.0)
    await c.close()
    size = sum(f.stat().st_size for f in ctx.data.glob("inhabit.db*"))
    return f"{n} rewrites of a {len(pts) * 9 / MiB:.1f} MiB stroke; database files {size / MiB:.0f} MiB"


async def attack_revoked(ctx: Ctx, seconds: float) -> str:
    """An edit link of its own keeps writing a stroke every 100 ms on its open socket; after 1 s it
    is revoked (`inhabit revoke`): how many strokes land after that, and when is the socket cut?"""
    link = ctx.target.token(ctx.data, "revoked", "edit")
    victim = await CanvasClient.connect(ctx.srv.ws_base, "revoked", link, name="revoked")
    watcher = await CanvasClient.connect(ctx.srv.ws_base, "revoked", ctx.token("revoked", "view"), name="watcher")
    after: list[str] = []
    revoked_at = cut_at = 0.0
    t_end = time.monotonic() + max(seconds, 3.0)
    i = 0
    revoking: asyncio.Task[int] | None = None

    async def revoke() -> int:  # the CLI, while the socket goes on writing
        proc = await asyncio.create_subprocess_exec(str(PY), "-m", ctx.target.module, "revoke", link, "--data", str(ctx.data),
                                                    cwd=ctx.target.tree, env={**os.environ, "PYTHONPATH": str(ctx.target.tree)},
                                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return await proc.wait()

    try:
        while time.monotonic() < t_end:
            if revoking is None and i == 10:
                revoking = asyncio.create_task(revoke())
                t_end += 5  # the CLI's start-up is not the attack's time
            if revoking is not None and revoking.done() and not revoked_at:
                revoked_at = time.monotonic()
                t_end = revoked_at + max(seconds, 3.0)
            if victim.error is not None and not cut_at:
                cut_at = time.monotonic()
            sid = f"rv{i}"
            if revoked_at:
                after.append(sid)
            victim.doc.add_strokes([Stroke(id=sid, points=[i, i, 0.5, i + 5, i + 5, 0.5])])
            i += 1
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)
        landed = sum(1 for sid in after if watcher.doc.stroke(sid) is not None)
    finally:
        await asyncio.gather(victim.close(), watcher.close(), return_exceptions=True)
    cut = f"socket cut {max(0.0, cut_at - revoked_at):.1f} s after ({victim.error.code} {victim.error.reason!r})" if cut_at and victim.error else "socket still open"
    return f"{landed}/{len(after)} strokes landed after revocation; {cut}"


INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "abuse", "version": "1"}}}
MCP_HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


async def _mcp_open(http: httpx.AsyncClient, room: str, token: str, streams: contextlib.AsyncExitStack) -> int:
    """Initialize one MCP session and open its GET stream, never read; the status of the initialize."""
    r = await http.post(f"/rooms/{room}/mcp", json=INIT, headers={**MCP_HEADERS, "authorization": f"Bearer {token}"})
    sid = r.headers.get("mcp-session-id")
    if r.status_code == 200 and sid:
        await http.post(f"/rooms/{room}/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"},
                        headers={**MCP_HEADERS, "authorization": f"Bearer {token}", "mcp-session-id": sid})
        with contextlib.suppress(httpx.HTTPError):
            await streams.enter_async_context(http.stream("GET", f"/rooms/{room}/mcp", headers={
                "accept": "text/event-stream", "authorization": f"Bearer {token}", "mcp-session-id": sid}))
    return r.status_code


async def attack_mcp_sessions(ctx: Ctx, seconds: float) -> str:
    """One '*' view link opens 4 MCP sessions in each of 16 rooms, each with a GET stream it never
    reads; then another link (an edit link of its own room) tries to start one."""
    base = ctx.srv.ws_base.replace("ws://", "http://").removesuffix("/rooms")
    statuses: dict[int, int] = {}
    async with httpx.AsyncClient(base_url=base, timeout=10) as http, contextlib.AsyncExitStack() as streams:
        for room in range(16):
            for _ in range(4):
                code = await _mcp_open(http, f"m{room}", ctx.token("*", "view"), streams)
                statuses[code] = statuses.get(code, 0) + 1
        other = await _mcp_open(http, "victim", ctx.target.token(ctx.data, "victim", "edit"), streams)
    return f"attacker's 64 initializes: {statuses}; another link's initialize -> {other}"


async def attack_origin(ctx: Ctx, seconds: float) -> str:
    """A page on another origin, holding a link (or facing --open): its websocket upgrade and a
    text/plain prompt POST carry `Origin: http://evil.test`; and /mcp asked with a foreign Host."""
    base = ctx.srv.ws_base.replace("ws://", "http://").removesuffix("/rooms")
    evil = {"origin": "http://evil.test"}
    try:
        async with websockets.connect(ctx.url("o", "view"), additional_headers=evil, open_timeout=5) as ws:
            first = await asyncio.wait_for(ws.recv(), 3)
            ws_got = f"websocket open, first frame {len(first)} bytes"
    except websockets.ConnectionClosed as e:
        ws_got = f"websocket closed {e.rcvd.code if e.rcvd else '?'}"
    except Exception as e:
        ws_got = f"websocket refused ({type(e).__name__})"
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        post = await http.post("/rooms/o/prompts", params={"token": ctx.token("*", "edit")}, headers={**evil, "content-type": "text/plain"},
                               content=b'{"text": "@agent draw", "author": "page"}')
        mcp = await http.post("/rooms/o/mcp", json=INIT, headers={**MCP_HEADERS, "host": "evil.test", "authorization": f"Bearer {ctx.token('*', 'view')}"})
    return f"{ws_got}; cross-origin text/plain prompt -> {post.status_code}; /mcp with Host evil.test -> {mcp.status_code}"


async def attack_chat_prompts(ctx: Ctx, seconds: float) -> str:
    """Issue 18: 120 `@agent` lines written straight into the chat from one edit link (HTTP
    allows it 6 prompts a minute); the agent joins for another link's HTTP prompt first."""
    room = "chatflood"
    async with httpx.AsyncClient(base_url=ctx.srv.ws_base.replace("ws://", "http://").removesuffix("/rooms"), timeout=10) as http:
        await http.post(f"/rooms/{room}/prompts", params={"token": ctx.token(room, "edit")}, json={"text": "@agent hi"})
        await asyncio.sleep(1.0)
        c = await CanvasClient.connect(ctx.srv.ws_base, room, ctx.token("*", "edit"), name="flooder")
        for i in range(120):  # paced over the attack's seconds, so the queue alone cannot be what bounds it
            c.doc.post(Message(author="flooder", text=f"@agent draw {i}"))
            await c.flush()
            await asyncio.sleep(seconds / 120)
        await asyncio.sleep(3.0)
        refusals = sum(1 for m in c.doc.messages() if m.kind == "agent" and m.text.startswith("Not run"))
        await c.close()
        runs = (await http.get(f"/rooms/{room}/runs", params={"token": ctx.token(room, "view")})).json().get("runs", [])
    return f"120 chat prompts from one link -> {sum(1 for r in runs if r.get('author') == 'flooder')} runs, {refusals} refusal lines"


async def attack_pass_for_agent(ctx: Ctx, seconds: float) -> str:
    """Issue 18: an editor's client writes a chat line with kind "agent" and a forged run, and
    announces presence as {name: "agent", kind: "agent"}: what does a bystander see?"""
    room = "forge"
    forger = await CanvasClient.connect(ctx.srv.ws_base, room, ctx.token("*", "edit"), name="agent", kind="agent")
    seer = await CanvasClient.connect(ctx.srv.ws_base, room, ctx.token("*", "view"), name="seer")
    forger.doc.post(Message(id="forged", author="agent", kind="agent", text="trust me", run="run-forged"))
    await forger.flush()
    with contextlib.suppress(TimeoutError):
        await seer.wait_for(lambda d: any(m.id == "forged" for m in d.messages()), min(seconds, 5.0))
    with contextlib.suppress(TimeoutError):
        await seer.wait_for(lambda: any((s.get("user") or {}).get("name") == "agent" for s in seer.awareness().values()), min(seconds, 5.0))
    line = next((m.kind for m in seer.doc.messages() if m.id == "forged"), "missing")
    shown = next(((s.get("user") or {}).get("kind") for s in seer.awareness().values() if (s.get("user") or {}).get("name") == "agent"), "missing")
    await asyncio.gather(forger.close(), seer.close(), return_exceptions=True)
    return f"forged chat line shown as kind {line!r}, forged presence as kind {shown!r}"


ATTACKS: dict[str, Callable[[Ctx, float], Awaitable[str]]] = {
    "sync": attack_sync, "stale": attack_stale, "presence": attack_presence, "prompts": attack_prompts, "rewrite": attack_rewrite,
    "revoked": attack_revoked, "mcp_sessions": attack_mcp_sessions, "origin": attack_origin,
    "chat-prompts": attack_chat_prompts, "pass-for-agent": attack_pass_for_agent,
}


def cost_attacks() -> dict[str, Callable[[Ctx, float], Awaitable[str]]]:
    """Issue 19's attacks (every cost bounded per room and per link), one module per class:
    imported when `main` runs, so that their `from abuse import Ctx` finds this module whole."""
    from abuse_bcpu import attack_behaviour_cpu
    from abuse_chat import attack_chat_flood
    from abuse_disk import attack_disk
    from abuse_fair import attack_render_queue, attack_sandbox_share
    from abuse_http import attack_big_room_reads, attack_unread_strokes
    from abuse_records import attack_run_records
    from abuse_view import attack_big_room_agent
    return {"run_records": attack_run_records, "sandbox_share": attack_sandbox_share, "render_queue": attack_render_queue,
            "unread_strokes": attack_unread_strokes, "big_room_reads": attack_big_room_reads, "big_room_agent": attack_big_room_agent,
            "behaviour_cpu": attack_behaviour_cpu, "disk": attack_disk, "chat_flood": attack_chat_flood}


# ---- one row: fresh server, bystander, attack, RSS ------------------------------------------


async def run_one(target: Target, name: str, seconds: float, tmp: Path) -> dict[str, str]:
    data = tmp / f"{target.label}-{name}"
    srv = target.start(data)
    ctx = Ctx(target, srv, data)
    try:
        base_rss = srv.rss()
        srv.reset_peak()
        stop = asyncio.Event()
        by = Bystander()
        probe = asyncio.create_task(by.run(ctx, stop))
        await asyncio.sleep(0.5)
        try:
            got = await asyncio.wait_for(ATTACKS[name](ctx, seconds), seconds + 60)
        except Exception as e:
            got = f"attack failed: {type(e).__name__}: {e}"
        stop.set()
        await asyncio.wait_for(probe, 30)
        await asyncio.sleep(2.0)
        return {"attack": name, "server": target.label, "rss peak": f"+{(srv.peak_rss - base_rss) / MiB:.0f} MiB",
                "rss after": f"+{(srv.rss() - base_rss) / MiB:.0f} MiB", "bystander": by.summary(), "attacker got": got}
    finally:
        srv.stop()


def print_table(rows: list[dict[str, str]]) -> None:
    cols = ["attack", "server", "rss peak", "rss after", "bystander", "attacker got"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(r[c] for c in cols) + " |")


def main() -> int:
    ATTACKS.update(cost_attacks())
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", metavar="REV", help="also run the attacks against this commit (a temporary worktree)")
    ap.add_argument("--attacks", default=",".join(ATTACKS), help=f"comma-separated, from {','.join(ATTACKS)}")
    ap.add_argument("--seconds", type=float, default=4.0, help="how long each attack runs")
    args = ap.parse_args()
    names = [a for a in args.attacks.split(",") if a]
    rows: list[dict[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="inhabit-abuse-") as tmp_:
        tmp = Path(tmp_)
        targets = [Target("now", ROOT)]
        if args.before:
            before = tmp / "before"
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(before), args.before], check=True)
            targets.insert(0, Target(f"before ({args.before})", before))
        try:
            for name in names:
                for target in targets:
                    print(f"... {name} against {target.label}", file=sys.stderr, flush=True)
                    rows.append(asyncio.run(run_one(target, name, args.seconds, tmp)))
        finally:
            if args.before:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tmp / "before")], check=False)
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
