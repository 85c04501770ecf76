"""One prompt budget per link, whatever the door (issue 18): `@agent …` lines written straight
into the chat over the websocket count against the writer's link in the same per-link limit as
HTTP prompts. Real server, real hosted agent, the real `anthropic` client against the scripted
Messages-API server, a real websocket client as the person."""

from __future__ import annotations

import httpx
import pytest

from canvas import Message
from wire.client import CanvasClient

from support.agent_helpers import connect, wait_chat, wait_run
from support.live_server import LiveServer
from support.model_server import ModelServer

pytestmark = pytest.mark.timeout(180)

PER_LINK = 6  # --prompts-per-minute's default: what HTTP allows one link a minute


@pytest.fixture
def model_server(shared_model_server: ModelServer) -> ModelServer:
    return shared_model_server


async def _runs(server: LiveServer, room: str) -> list[dict]:
    async with httpx.AsyncClient() as http:
        r = await http.get(f"{server.http}/rooms/{room}/runs", params={"token": server.token(room, "view")})
        r.raise_for_status()
        return r.json()["runs"]


@pytest.mark.serial  # a rate-limit window: the lines must all arrive within its refill time (10 s)
async def test_120_chat_prompts_from_one_link_get_the_http_limit(agent_server: LiveServer, model_server: ModelServer) -> None:
    server, room = agent_server, "chat-budget"
    model_server.script(room, [{"text": "Done."}])
    other = server.access().mint(room, "edit", name="starter")  # another link: its own budget
    alice = await connect(server, room, "alice")
    try:
        async with httpx.AsyncClient() as http:  # the agent joins the room for a prompt of another link
            r = await http.post(f"{server.http}/rooms/{room}/prompts", json={"text": "@agent hi"}, params={"token": other})
        assert r.status_code == 202, r.text
        await wait_run(server, room, r.json()["run"])

        for i in range(120):  # 120 prompts written straight into the document, at once
            alice.doc.post(Message(author="alice", text=f"@agent draw thing {i}"))
        await alice.flush()
        starter = await CanvasClient.connect(server.ws, room, token=other, name="starter")
        starter.doc.post(Message(author="starter", text="@agent last"))  # the other link's: read after all of alice's lines
        await starter.flush()
        await alice.wait_for(lambda d: any(m.text == "@agent last" for m in d.messages()), 10)
        await starter.close()
        last = await wait_chat(alice, lambda m: m.kind == "agent" and m.run and "last" in m.text, 90)
        await wait_run(server, room, last.run)

        runs = [r for r in await _runs(server, room) if r["author"] == "alice"]
        assert len(runs) == PER_LINK and all(r["source"] == "chat" and r["grant"] == "write" for r in runs), runs
        for run in runs:
            assert (await wait_run(server, room, run["id"]))["status"] == "done"
        refusals = [m for m in alice.doc.messages() if m.kind == "agent" and m.text.startswith("Not run: too many prompts from this link")]
        assert len(refusals) == 1 and refusals[0].run is None, [m.text for m in refusals]
        assert f"at most {PER_LINK} a minute" in refusals[0].text

        async with httpx.AsyncClient() as http:  # the same link's budget is spent for HTTP too
            r = await http.post(f"{server.http}/rooms/{room}/prompts", json={"text": "@agent more"},
                                params={"token": server.token(room, "edit")})
        assert r.status_code == 429 and "too many prompts from this link" in r.json()["error"]
        assert len([r for r in await _runs(server, room) if r["author"] == "alice"]) == PER_LINK
    finally:
        await alice.close()
