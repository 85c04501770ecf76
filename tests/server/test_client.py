"""CanvasClient: callbacks, awareness API, and reconnection across a server restart."""

from __future__ import annotations

import asyncio

import pytest

from canvas import Message, Stroke
from wire.client import CanvasClient

from support.live_server import LiveServer

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def server(shared_server: LiveServer) -> LiveServer:
    """These tests only need rooms of their own: one server for the module."""
    return shared_server


async def test_on_change_and_wait_for(server):
    tok = server.token()
    a = await CanvasClient.connect(server.ws, "cb", tok, name="a", kind="agent", color="#112233")
    b = await CanvasClient.connect(server.ws, "cb", tok, name="b")
    seen: list[int] = []
    unsubscribe = b.on_change(lambda d: seen.append(len(d.stroke_ids())))
    a.doc.post(Message(author="a", text="hi"))
    a.doc.add_strokes([Stroke(id="x", points=[1, 1, 0.5])])
    await b.wait_for(lambda d: d.stroke("x") and d.messages(), 5)
    await asyncio.sleep(0.05)
    assert seen and seen[-1] == 1
    unsubscribe()
    # a link's client claiming kind "agent" is shown as a person: only the server's own peers are agents (issue 18)
    await b.wait_for(lambda: any(s["user"] == {"name": "a", "color": "#112233", "kind": "human"} for s in b.awareness().values()), 5)
    with pytest.raises(TimeoutError):
        await b.wait_for(lambda d: d.stroke("never"), 0.3)
    await a.close()
    await b.close()


async def test_reconnects_after_restart_and_syncs_offline_edits(server_factory):
    server = server_factory()  # its own: it stops and restarts it
    tok = server.token()
    a = await CanvasClient.connect(server.ws, "rc", tok)
    a.doc.add_strokes([Stroke(id="before", points=[1, 1, 0.5])])
    await asyncio.sleep(0.2)
    server.stop()
    a.doc.add_strokes([Stroke(id="offline", points=[1, 1, 0.5])])  # made while disconnected
    server.start()
    b = await CanvasClient.connect(server.ws, "rc", tok)
    await b.wait_for(lambda d: {"before", "offline"} <= set(d.stroke_ids()), 10)
    b.doc.add_strokes([Stroke(id="after", points=[1, 1, 0.5])])
    await a.wait_for(lambda d: d.stroke("after"), 10)
    await a.close()
    await b.close()


async def test_presence_false_announces_nothing_until_the_first_set_awareness(server):
    tok = server.token()
    watcher = await CanvasClient.connect(server.ws, "quiet", tok, name="watcher")
    bot = await CanvasClient.connect(server.ws, "quiet", tok, name="bot", presence=False)
    bot.doc.add_strokes([Stroke(id="synced", points=[1, 1, 0.5])])  # the bot's frames are through
    await watcher.wait_for(lambda d: d.stroke("synced"), 5)
    assert bot.client_id not in watcher.awareness()
    bot.set_awareness({"cursor": {"x": 1, "y": 2}})
    await watcher.wait_for(lambda: (watcher.awareness().get(bot.client_id) or {}).get("cursor") == {"x": 1, "y": 2}, 5)
    assert watcher.awareness()[bot.client_id]["user"]["name"] == "bot"
    await bot.close()
    await watcher.close()
