"""The agent under hostile peers: what one view link can make it cost, against a real server,
the real `anthropic` client and a scripted Messages-API server (tests/support/model_server.py)."""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

import httpx
import pytest

from common.access import Access

from support.agent_helpers import connect, get_run, inhabit, scripted_env, wait_chat, wait_run

pytestmark = pytest.mark.timeout(120)


async def post(server, room: str, body: bytes | dict, token: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as http:
        kw = {"content": body} if isinstance(body, bytes) else {"json": body}
        return await http.post(f"{server.http}/rooms/{room}/prompts", headers={"Authorization": f"Bearer {token}",
                               "Content-Type": "application/json"}, **kw)


async def runs_of(server, room: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as http:
        return await http.get(f"{server.http}/rooms/{room}/runs", params={"token": server.token(room, "view")})


def label(server: Any, token: str, room: str) -> str:
    """How the server shows a token's holder: its id, read back with the server's own secret."""
    info = Access.load(server.data_dir).verify(token, room)
    assert info.role == "view" and not info.name
    return f"viewer {info.id[:6]}"


def tool_turn(codes: list[str]) -> dict:
    """One model turn asking for many executes at once (a verbatim Messages-API reply)."""
    content = [{"type": "tool_use", "id": f"toolu_{i:04d}", "name": "execute", "input": {"code": c}} for i, c in enumerate(codes)]
    return {"raw": json.dumps({"id": "msg_many", "type": "message", "role": "assistant", "model": "scripted-model", "content": content,
                               "stop_reason": "tool_use", "stop_sequence": None, "usage": {"input_tokens": 10, "output_tokens": 10}})}


async def metric(server, name: str) -> float:
    async with httpx.AsyncClient(timeout=30) as http:
        text = (await http.get(f"{server.http}/metrics")).text
    m = re.search(rf"^inhabit_{name} (\S+)$", text, re.M)
    assert m, text[-2000:]
    return float(m.group(1))


async def test_lone_surrogates_never_poison_the_run_store(server_factory, model_server):
    model_server.script("poison", [{"text": "Hi there."}])
    model_server.script("other", [{"text": "Fine."}])
    server = server_factory(env=scripted_env(model_server))
    view = server.token("poison", "view")
    r = await post(server, "poison", b'{"text": "@agent hi \\udc00", "author": "x\\ud800"}', view)
    assert r.status_code < 500, r.text
    assert r.status_code == 202, r.text
    run = await wait_run(server, "poison", r.json()["run"])
    assert run["prompt"] == "hi \ufffd" and run["author"].startswith("x\ufffd (unverified)"), run
    for _ in range(2):
        assert (await runs_of(server, "poison")).status_code == 200
    r = await post(server, "other", {"text": "@agent hello"}, server.token("other", "edit"))
    other = await wait_run(server, "other", r.json()["run"])
    assert other["status"] == "done"
    # what was saved is read back after a restart, for both rooms
    server.restart()
    for room, rid in (("poison", run["id"]), ("other", other["id"])):
        r = await runs_of(server, room)
        assert r.status_code == 200 and rid in [x["id"] for x in r.json()["runs"]], r.text


@pytest.mark.serial  # timing-sensitive: runs alone under xdist
async def test_prompt_flood_from_a_view_token_is_bounded(server_factory, model_server):
    room = "flood"
    model_server.script(room, [{"text": "ok"}])
    server = server_factory(env=scripted_env(model_server), prompts_per_minute=3, room_prompts_per_minute=5, prompt_queue=2)
    view, edit = server.token(room, "view"), server.token(room, "edit")
    watcher = await connect(server, room, "wendy", role="view")
    try:
        flood = await asyncio.gather(*(post(server, room, {"text": "@agent hi", "author": "Alice (room owner)"}, view) for _ in range(60)))
        codes = [r.status_code for r in flood]
        assert codes.count(202) <= 3 and set(codes) <= {202, 429}, codes
        refused = next(r for r in flood if r.status_code == 429)
        assert int(refused.headers["Retry-After"]) >= 1 and "too many prompts" in refused.json()["error"]
        # the author is the token's identity; the name the caller gave is marked as unverified
        accepted = [r.json()["run"] for r in flood if r.status_code == 202]
        run = await wait_run(server, room, accepted[0])
        assert run["author"] == f"Alice (room owner) (unverified) · {label(server, view, room)}", run["author"]
        # an editor is not refused for the viewers' flood, and is served promptly
        t0 = time.monotonic()
        r = await post(server, room, {"text": "@agent draw"}, edit)
        assert r.status_code == 202, r.text
        assert (await wait_run(server, room, r.json()["run"], timeout=20))["status"] == "done"
        assert time.monotonic() - t0 < 20
        # the chat grew by a bounded amount: 3 lines (prompt, status, reply) per accepted prompt
        await asyncio.sleep(0.5)
        assert len(watcher.doc.messages()) <= 3 * (codes.count(202) + 1), len(watcher.doc.messages())
    finally:
        await watcher.close()


async def test_editors_go_first_and_displace_viewers_when_the_queue_is_full(server_factory, model_server):
    room = "queue"
    # every run takes ~1 s: an execute that loops until the sandbox stops it
    model_server.script(room, [{"tool": "execute", "input": {"code": "while (true) {}"}}, {"text": "slow"}])
    server = server_factory(env=scripted_env(model_server), prompt_queue=2)
    view, edit = server.token(room, "view"), server.token(room, "edit")
    viewers = [await post(server, room, {"text": f"@agent v{i}"}, view) for i in range(3)]
    assert [r.status_code for r in viewers] == [202, 202, 202]  # one running, two waiting
    refused = await post(server, room, {"text": "@agent v3"}, view)
    assert refused.status_code == 429 and "waiting" in refused.json()["error"] and refused.headers["Retry-After"]
    r = await post(server, room, {"text": "@agent e"}, edit)
    assert r.status_code == 202, r.text  # full, but an editor's prompt takes the newest viewer's place
    runs = {name: await wait_run(server, room, rid, timeout=40) for name, rid in
            (("v0", viewers[0].json()["run"]), ("v1", viewers[1].json()["run"]), ("v2", viewers[2].json()["run"]), ("e", r.json()["run"]))}
    assert runs["v2"]["status"] == "failed" and "editor" in runs["v2"]["reply"], runs["v2"]
    assert runs["e"]["started"] < runs["v1"]["started"], "the editor's prompt ran before the waiting viewer's"


async def test_a_star_view_token_cannot_keep_many_agents_resident(server_factory, model_server):
    slow = [{"tool": "execute", "input": {"code": "while (true) {}"}}, {"text": "done"}]
    for i in range(8):
        model_server.script(f"r{i}", slow)
    server = server_factory(env=scripted_env(model_server), agent_peers=3)
    star = server.token("*", "view")
    codes = []
    for i in range(6):
        r = await post(server, f"r{i}", {"text": "@agent hi"}, star)
        codes.append(r.status_code)
        assert await metric(server, "agent_peers") <= 3
        if r.status_code == 503:
            assert "busy" in r.json()["error"] and r.headers["Retry-After"]
    assert codes[:3] == [202, 202, 202] and 503 in codes[3:], codes
    # once they are idle, a new room gets an agent: the idlest one leaves
    for i in range(3):
        await wait_run(server, f"r{i}", (await runs_of(server, f"r{i}")).json()["runs"][0]["id"], timeout=40)
    r = await post(server, "r7", {"text": "@agent hi"}, star)
    assert r.status_code == 202, r.text
    assert await metric(server, "agent_peers") <= 3


@pytest.mark.serial  # timing-sensitive: runs alone under xdist
async def test_a_run_is_bounded_and_other_rooms_are_served_meanwhile(server_factory, model_server):
    model_server.script("loops", [tool_turn(["while (true) {}"] * 40), {"text": "never"}])
    model_server.script("calls", [tool_turn(["1 + 1"] * 40), {"text": "never"}])
    model_server.script("calm", [{"text": "Hello!"}])
    server = server_factory(env=scripted_env(model_server), agent_run_s=6, agent_tool_calls=5)
    edit = server.token("*", "edit")
    watcher = await connect(server, "loops", "wendy", role="view")
    try:
        t0 = time.monotonic()
        loops = (await post(server, "loops", {"text": "@agent spin"}, edit)).json()["run"]
        calls = (await post(server, "calls", {"text": "@agent count"}, edit)).json()["run"]
        await asyncio.sleep(1.0)  # the loops are running now
        calm = (await post(server, "calm", {"text": "@agent hi"}, edit)).json()["run"]
        assert (await wait_run(server, "calm", calm, timeout=15))["status"] == "done"
        assert time.monotonic() - t0 < 15, "another room waited for the looping one"
        run = await wait_run(server, "loops", loops, timeout=30)
        took = time.monotonic() - t0
        assert run["status"] == "failed" and "6 s" in run["reply"], run
        assert took < 6 + 8, took  # the bound, plus one sandbox timeout and slack for 2 busy cores
        assert len(run["code"]) <= 5
        await wait_chat(watcher, lambda m: m.run == loops and "did not work" in m.text and "stopped" in m.text)
        run = await wait_run(server, "calls", calls, timeout=30)
        assert run["status"] == "failed" and "5 tool calls" in run["reply"] and len(run["code"]) == 5, run
    finally:
        await watcher.close()


async def test_exec_with_a_view_token_cannot_ask_for_write(server, tmp_path):
    room = "cli"
    js = tmp_path / "line.js"
    js.write_text("canvas.draw({points: [[10, 10], [90, 40]]})")
    url = f"{server.ws}/{room}?token={server.token(room, 'view')}"
    out = await asyncio.to_thread(inhabit, "exec", str(js), "--room", url, "--grant", "write")
    assert out.returncode != 0 and "view-only" in out.stderr and "written" not in out.stdout, (out.stdout, out.stderr)
    async with httpx.AsyncClient(timeout=30) as http:
        strokes = (await http.get(f"{server.http}/rooms/{room}/strokes", params={"token": server.token(room, "view")})).json()
    assert not strokes.get("strokes"), strokes


async def test_a_damaged_runs_database_is_moved_aside(server_factory, model_server):
    model_server.script("after", [{"text": "Still here."}])
    server = server_factory(env=scripted_env(model_server))
    server.stop()
    db = server.data_dir / "runs.sqlite3"
    db.write_bytes(b"SQLite format 3\x00" + b"\xde\xad" * 4096)
    for extra in ("-wal", "-shm"):
        (server.data_dir / f"runs.sqlite3{extra}").unlink(missing_ok=True)
    server.start()
    assert list(server.data_dir.glob("runs.sqlite3.damaged-*")), "the damaged file is kept aside"
    assert "damaged" in server.log()
    r = await post(server, "after", {"text": "@agent hi"}, server.token("after", "edit"))
    run = await wait_run(server, "after", r.json()["run"])
    assert run["status"] == "done"
    server.restart()
    assert (await get_run(server, "after", run["id"]))["reply"] == "Still here."


def test_rate_limit_buckets_are_bounded_and_expire():
    from agent.limits.admission import RateLimiter

    now = [0.0]
    limiter = RateLimiter(3, max_keys=1_000, clock=lambda: now[0])
    for i in range(5_000):  # one token per key: many distinct callers
        assert limiter.wait(i) == 0
        limiter.take(i)
    assert len(limiter) <= 1_000
    assert [limiter.wait("a") == 0 and limiter.take("a") is None for _ in range(3)] == [True] * 3
    assert 19 < limiter.wait("a") <= 20  # one comes back every 60/3 s
    now[0] += 61.0
    limiter.take("b")
    assert len(limiter) == 1  # every bucket idle for a whole window is forgotten
