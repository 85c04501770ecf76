"""Browser: nobody passes for the agent (issue 18). In one room, the real hosted agent answers a
prompt, an editor's headless client writes a chat line claiming `kind: "agent"` with a run and
a behaviour and announces presence as `{name: "agent", kind: "agent"}`, and a view link's MCP
session calls itself "agent". The page shows the robot badge for the agent's own line and
presence only; the forger as a person; the MCP session labelled "MCP"."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any

import httpx

from canvas import Message
from wire.client import CanvasClient

from support.live_server import LiveServer
from support.mcp_helpers import mcp_client
from support.model_server import ModelServer
from support.pages import ARTIFACTS, open_page


class Peers(threading.Thread):
    """An event loop of its own for the headless peers, while the page is driven synchronously."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.loop = asyncio.new_event_loop()

    def run(self) -> None:
        self.loop.run_forever()

    def do(self, coro: Coroutine[Any, Any, Any], timeout: float = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.join(10)


async def _mcp_session(server: LiveServer, room: str, joined: asyncio.Event, done: asyncio.Event) -> None:
    async with mcp_client(server, room, role="view", name="agent"):  # a view link's MCP client named "agent"
        joined.set()
        await done.wait()


def test_forged_agent_line_and_presence_are_not_shown_as_the_agents(agent_server: LiveServer, shared_model_server: ModelServer,
                                                                   browser: Any) -> None:
    server, room = agent_server, "web-forged-agent"
    shared_model_server.script(room, [{"text": "Done, for real."}])
    page = open_page(browser, server, room)
    peers = Peers()
    peers.start()
    done = asyncio.Event()
    try:
        # the real agent: an HTTP prompt, its lines carry kind "agent" and its run
        r = httpx.post(f"{server.http}/rooms/{room}/prompts", json={"text": "@agent hi"}, params={"token": server.token(room, "edit")})
        assert r.status_code == 202, r.text
        page.wait_for_selector("[data-testid=message][data-kind=agent] [data-testid=message-text]:has-text('Done, for real.')")

        async def forge() -> CanvasClient:
            c = await CanvasClient.connect(server.ws, room, server.token(room, "edit"), name="agent", kind="agent", color="#7c3aed")
            c.set_awareness({"cursor": {"x": 300, "y": 300}})
            c.doc.post(Message(id="forged", author="agent", kind="agent", text="I am the agent, trust me", run="run-forged", behaviour="bh-1"))
            await c.flush()
            return c

        forger = peers.do(forge())
        joined = asyncio.Event()
        session = asyncio.run_coroutine_threadsafe(_mcp_session(server, room, joined, done), peers.loop)
        peers.do(asyncio.wait_for(joined.wait(), 60))

        line = page.locator("[data-testid=message]:has([data-testid=message-text]:has-text('I am the agent, trust me'))")
        line.wait_for()
        assert line.get_attribute("data-kind") == "human" and line.locator(".badge").count() == 0
        assert line.get_attribute("data-behaviour") is None  # not shown as a behaviour's line either
        real = page.locator("[data-testid=message][data-kind=agent]")
        assert real.count() >= 2 and all("run-" in (real.nth(i).get_attribute("data-run") or "") for i in range(real.count()))
        assert all(real.nth(i).locator("[data-testid=message-text]").inner_text() != "I am the agent, trust me" for i in range(real.count()))

        cursor = page.locator("[data-testid=remote-cursor][data-name='agent']:not([data-via])")
        cursor.wait_for()
        assert cursor.get_attribute("data-kind") == "human" and cursor.locator(".bot").count() == 0
        # avatars: the hosted agent with the badge, the forger as a person, the MCP session labelled MCP
        page.wait_for_selector("[data-testid=avatar][data-via=mcp][title='agent']", state="attached")
        avatars = page.locator("[data-testid=avatar][title='agent']")
        kinds = sorted((avatars.nth(i).get_attribute("data-kind"), avatars.nth(i).get_attribute("data-via") or "")
                       for i in range(avatars.count()))
        assert kinds == [("agent", ""), ("agent", "mcp"), ("human", "")], kinds
        page.screenshot(path=str(ARTIFACTS / "web-forged-agent.png"))
        peers.do(forger.close())
        peers.loop.call_soon_threadsafe(done.set)
        session.result(30)
    finally:
        peers.loop.call_soon_threadsafe(done.set)
        peers.stop()
    assert not page.errors
