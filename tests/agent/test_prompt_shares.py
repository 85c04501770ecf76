"""A prompt's executes take the room's turn of the server's one sandbox (issue 19 item 2): the
room's hosted agent is one link with a CPU budget per minute; past it, an execute is not run and
the model is told so (and when to retry), and the run record says why. Real server, the real
`anthropic` client and a scripted Messages-API server."""

from __future__ import annotations

import json

import httpx

from support.agent_helpers import connect, get_run, scripted_env, wait_run


def _executes(codes: list[str]) -> dict:
    content = [{"type": "tool_use", "id": f"toolu_{i:04d}", "name": "execute", "input": {"code": c}} for i, c in enumerate(codes)]
    return {"raw": json.dumps({"id": "msg_shares", "type": "message", "role": "assistant", "model": "scripted-model", "content": content,
                               "stop_reason": "tool_use", "stop_sequence": None, "usage": {"input_tokens": 10, "output_tokens": 10}})}


async def test_past_its_budget_a_prompts_execute_is_refused_and_the_model_told_when_to_retry(server_factory, model_server):
    room = "spender"
    model_server.script(room, [_executes(["while (true) {}", "1 + 1"]), {"text": "I will stop."}])
    server = server_factory(env=scripted_env(model_server), sandbox_link_cpu_s=1)  # one looping run (2 s) spends it
    watcher = await connect(server, room, "wendy", role="view")
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            r = await http.post(f"{server.http}/rooms/{room}/prompts", json={"text": "@agent spin"},
                                headers={"Authorization": f"Bearer {server.token(room, 'edit')}"})
        run_id = r.json()["run"]
        run = await wait_run(server, room, run_id, timeout=30)
        errors = " ".join(run["errors"])
        assert "execute #1: timeout" in errors and "execute #2: busy" in errors, run["errors"]
        assert "CPU-seconds a minute of the sandbox: try again in" in errors
        told = model_server.requests_for(room)[-1]["body"]["messages"][-1]["content"]
        second = json.loads(told[1]["content"])
        assert second["error"]["kind"] == "busy" and "try again in" in second["error"]["message"], second
        assert (await get_run(server, room, run_id))["status"] == "failed"
    finally:
        await watcher.close()
