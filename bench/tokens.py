"""How much the model is sent for the canvas API: Code Mode vs one JSON tool per function.

Run: `.venv/bin/python bench/tokens.py [--before REV]`. Token counts use an offline tokenizer if one is
installed (tiktoken's cl100k_base, a proxy — Claude's tokenizer is not available offline);
otherwise they are approximated as chars / 4, and the output says which.

Two costs are measured:
1. fixed: what every request carries (system prompt + tool definitions); for MCP clients, the
   server's instructions and the `tools/list` result exactly as a client receives it (read off
   the wire from a real `inhabit serve` started for the purpose);
2. per task: what the model must read to act on a room — in Code Mode the compact result of
   the program it wrote; with JSON tools the full `canvas_strokes` result (every point);
3. per scripted task (tests/support/tasks.py, the suite tests/agent/test_tasks.py judges): the
   requests the model was sent and their input characters (system + tools + messages, as the
   scripted Messages-API server received them), or for the MCP task the characters an MCP client
   received (instructions + tool results), each run against a real `inhabit serve` of this tree
   and, with `--before REV`, of REV (checked out into a temporary git worktree, given this
   checkout's built sandbox engine and page). The scripted model's moves are the same for both:
   what differs is what the server answers them with.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the task suite's scenarios and fixtures

from agent.contract.canvas import ALL_CAPS, CanvasSession, view
from agent.contract.codemode import system_prompt, tools
from canvas import Stroke
from common.access import Access

from support.agent_helpers import scripted_env
from support.live_server import LiveServer
from support.model_server import ModelServer
from support.tasks import TaskResult, run_all

ROOT = Path(__file__).resolve().parent.parent

JSON_TOOLS_SYSTEM = (
    'You are agent, an AI peer in "room", a shared multiplayer drawing canvas. Canvas units, '
    "x right, y down. Use the tools to read strokes and draw. Be concise."
)


def counter():  # type: ignore[no-untyped-def]
    try:
        import tiktoken  # type: ignore[import-not-found]

        enc = tiktoken.get_encoding("cl100k_base")
        return (lambda s: len(enc.encode(s))), "tiktoken cl100k_base (proxy for Claude's tokenizer)"
    except Exception:
        return (lambda s: round(len(s) / 4)), "APPROXIMATE: chars / 4 (no offline tokenizer installed)"


def json_tools() -> list[dict]:
    """The classic alternative: each capability as its own JSON-schema tool."""
    out = []
    for cap in ALL_CAPS:
        out.append({"name": cap.name.replace(".", "_"), "description": cap.doc, "input_schema": cap.params.model_json_schema()})
    return out


def sample_room(n_marks: int = 30, points: int = 60) -> list[Stroke]:
    rnd = random.Random(1)
    out = []
    for i in range(n_marks):
        x, y = rnd.uniform(0, 1000), rnd.uniform(0, 800)
        pts: list[float] = []
        for _ in range(points):
            x += rnd.uniform(-5, 5)
            y += rnd.uniform(-5, 5)
            pts += [round(x, 1), round(y, 1), round(rnd.uniform(0.3, 0.8), 2)]
        out.append(Stroke(id=f"s{i:03d}", points=pts, author="alice", t=i))
    return out


def mcp_wire(role: str = "edit") -> tuple[str, str]:
    """(instructions, tools/list result JSON) as an MCP client receives them from a real server."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory() as data:
        token = Access.load(data).mint("bench", role)  # the server reads the same secret
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen([sys.executable, "-m", "inhabit", "serve", "--port", str(port), "--data", data], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{port}/rooms/bench/mcp"
            headers = {"Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"}
            for _ in range(200):
                try:
                    httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                    break
                except httpx.HTTPError:
                    time.sleep(0.1)
            params = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}
            init = httpx.post(url, headers=headers, json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params}, timeout=30)
            headers["Mcp-Session-Id"] = init.headers["mcp-session-id"]
            httpx.post(url, headers=headers, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, timeout=30)
            listed = httpx.post(url, headers=headers, json={"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}, timeout=30)
            httpx.delete(url, headers=headers, timeout=30)
        finally:
            proc.terminate()
            proc.wait(10)
    return init.json()["result"]["instructions"], json.dumps(listed.json()["result"], separators=(",", ":"))


async def _tasks_on(tree: Path, data: Path) -> list[TaskResult]:
    model = ModelServer().start()
    server = LiveServer(data, env=scripted_env(model), root=tree)
    try:
        server.start()
        return await run_all(server, model)
    finally:
        server.stop()
        model.stop()


def scripted_tasks(before: str | None) -> list[tuple[str, TaskResult]]:
    """(tree label, result) for each scripted task, on REV first (if any), then on this tree."""
    out: list[tuple[str, TaskResult]] = []
    with tempfile.TemporaryDirectory(prefix="inhabit-tokens-") as tmp_:
        tmp = Path(tmp_)
        trees = [("now", ROOT)]
        if before:
            old = tmp / "before"
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(old), before], check=True)
            for built in ("agent/sandbox/assets", "server/static"):  # git-ignored build output: the same pinned engine and page
                shutil.copytree(ROOT / built, old / built, dirs_exist_ok=True)
            trees.insert(0, (f"before ({before})", old))
        try:
            for label, tree in trees:
                print(f"... scripted tasks on {label}", file=sys.stderr, flush=True)
                out += [(label, r) for r in asyncio.run(_tasks_on(tree, tmp / f"data-{len(out)}"))]
        finally:
            if before:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tmp / "before")], check=False)
    return out


def print_tasks(results: list[tuple[str, TaskResult]]) -> None:
    print("\nper scripted task (input characters: what the model was sent, all requests together)\n")
    print(f"{'task':30} {'tree':22} {'requests':>8} {'input chars':>12} {'chars/request':>13}  judged")
    for label, r in results:
        verdict = "ok" if not r.problems else "WRONG: " + "; ".join(r.problems)
        per = r.input_chars // r.requests if r.requests else 0
        print(f"{r.task:30} {label:22} {r.requests:>8} {r.input_chars:>12} {per:>13}  {verdict}")
    print("(the MCP task: tool calls and the characters its client received, instructions included)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", metavar="REV", help="also run the scripted tasks against this commit (a temporary worktree)")
    ap.add_argument("--no-tasks", action="store_true", help="only the fixed and per-task sizes, no scripted tasks")
    args = ap.parse_args()
    count, how = counter()
    code_sys = system_prompt(name="agent", room="room", grant="write")
    code_tools = json.dumps(tools())
    classic_tools = json.dumps(json_tools())
    rows = [
        ("Code Mode: system prompt", code_sys),
        ("Code Mode: 3 tool schemas (search, execute, view)", code_tools),
        ("Code Mode: total fixed", code_sys + code_tools),
        ("JSON tools: minimal system prompt", JSON_TOOLS_SYSTEM),
        (f"JSON tools: {len(ALL_CAPS)} tool schemas", classic_tools),
        ("JSON tools: total fixed", JSON_TOOLS_SYSTEM + classic_tools),
    ]
    instructions, mcp_tools = mcp_wire()
    rows += [
        ("MCP: server instructions (initialize)", instructions),
        ("MCP: tools/list result as a client receives it (search, execute, view)", mcp_tools),
        ("MCP: total fixed", instructions + mcp_tools),
    ]
    room = sample_room()
    session = CanvasSession(room, author="agent", run_id="r", grant="write")
    full = json.dumps([view(s) for s in room])
    summary = json.dumps({"ok": True, "result": json.dumps({"count": len(room), "bounds": session.bounds(None)}), "calls": {"canvas.strokes": 1, "canvas.bounds": 1}})  # type: ignore[arg-type]
    rows += [
        (f"per task, JSON tools: canvas_strokes result ({len(room)} strokes x 60 pts)", full),
        ("per task, Code Mode: compact execute record (summary the code returned)", summary),
    ]
    print(f"token counts: {how}\n")
    print(f"{'what':72} {'chars':>8} {'tokens':>8}")
    for label, text in rows:
        print(f"{label:72} {len(text):>8} {count(text):>8}")
    print(
        "\nNote: with only 6 functions the fixed costs are of the same order; Code Mode's fixed cost does not grow with the API "
        "(search returns docs on demand), and the stroke data stays in the sandbox instead of flowing through the model."
    )
    if not args.no_tasks:
        print_tasks(scripted_tasks(args.before))


if __name__ == "__main__":
    main()
