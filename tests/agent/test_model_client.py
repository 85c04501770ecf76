"""The model client is made on first use, off the event loop, once: a server that is never
prompted never imports the `anthropic` SDK (~1.5 s of CPU per start), and concurrent first
prompts share one client."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from agent.runs import loop
from agent.runs.loop import ModelClient
from agent.runs.settings import AgentSettings

from support.agent_helpers import post_prompt, scripted_env, wait_run


async def test_concurrent_first_uses_make_one_client_off_the_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[str] = []

    def make(settings: AgentSettings) -> Any:
        made.append(threading.current_thread().name)
        return object()

    monkeypatch.setattr(loop, "model_client", make)
    shared = ModelClient(AgentSettings())
    clients = await asyncio.gather(*(shared.get() for _ in range(8)))
    assert len(made) == 1 and made[0] != threading.main_thread().name
    assert all(c is clients[0] for c in clients)


async def test_a_client_that_cannot_be_made_is_tried_again(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0

    def make(settings: AgentSettings) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("no SDK yet")
        return "client"

    monkeypatch.setattr(loop, "model_client", make)
    shared = ModelClient(AgentSettings())
    with pytest.raises(RuntimeError):
        await shared.get()
    assert await shared.get() == "client" and calls == 2


def _imports_anthropic(log: str) -> bool:
    return any(line.rstrip().endswith("| anthropic") for line in log.splitlines())


async def test_a_server_imports_the_sdk_only_when_prompted(server_factory, model_server) -> None:
    model_server.script("lazy", [{"text": "hello"}])
    server = server_factory(env={**scripted_env(model_server), "PYTHONPROFILEIMPORTTIME": "1"})
    assert not _imports_anthropic(server.log_path.read_text(errors="replace")), "the model SDK was imported at start-up"
    r = await post_prompt(server, "lazy", "@agent hello")
    assert r.status_code == 202, r.text
    run = await wait_run(server, "lazy", r.json()["run"])
    assert run["status"] == "done", run
    assert _imports_anthropic(server.log_path.read_text(errors="replace")), "the first prompt made the client"
