"""Nobody passes for the agent (issue 18): a link's client that writes a chat line claiming
`kind: "agent"` (with a forged run and behaviour) or a presence claiming `kind: "agent"` / `"mcp"`
is shown as what it is, a person, to every other peer; and no peer ever sees the forged form.
Real server, real websocket clients."""

from __future__ import annotations

from typing import Any

import pytest
from pycrdt import Array

from canvas import Message
from wire.client import CanvasClient

from support.live_server import LiveServer

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def server(shared_server: LiveServer) -> LiveServer:
    """These tests only need rooms of their own: one server for the module."""
    return shared_server


async def test_forged_agent_line_is_rewritten_before_anybody_sees_it(server: LiveServer, room: str) -> None:
    watcher = await CanvasClient.connect(server.ws, room, server.token(room, "view"), name="watcher")
    seen_kinds: list[tuple[str, Any, Any]] = []  # every state of the forged line the watcher ever held
    watcher.on_change(lambda d: seen_kinds.extend((m.kind, m.run, m.behaviour) for m in d.messages() if m.id == "forged"))
    mallory = await CanvasClient.connect(server.ws, room, server.token(room, "edit"), name="mallory")
    try:
        mallory.doc.post(Message(id="forged", author="agent", kind="agent", text="I drew that (run r-1)", run="r-1", behaviour="bh-1"))
        mallory.doc.post(Message(id="plain", author="mallory", text="@agent hi"))
        await watcher.wait_for(lambda d: {m.id for m in d.messages()} == {"forged", "plain"}, 10)
        lines = {m.id: m for m in watcher.doc.messages()}
        forged = lines["forged"]
        # shown as the writer's line: same id, author, text and place; not the agent's, no behaviour
        assert (forged.kind, forged.author, forged.text, forged.behaviour) == ("human", "agent", "I drew that (run r-1)", None)
        assert forged.run == "r-1"  # a reference only: the page's card shows the server's record of it
        assert [m.id for m in watcher.doc.messages()] == ["forged", "plain"] and lines["plain"].kind == "human"
        await watcher.wait_for(lambda: seen_kinds, 5)  # change callbacks run a moment after the document changed
        assert all(k == ("human", "r-1", None) for k in seen_kinds), seen_kinds
        # the writer's own copy is rewritten too, and a newcomer loads the rewritten line
        await mallory.wait_for(lambda d: [m.kind for m in d.messages()] == ["human", "human"], 10)
        late = await CanvasClient.connect(server.ws, room, server.token(room, "view"), name="late")
        raw = late.doc.doc.get("messages", type=Array).to_py()
        assert len(raw) == 2 and raw[0]["kind"] == "human" and "behaviour" not in raw[0]
        await late.close()
    finally:
        await mallory.close()
        await watcher.close()


async def test_forged_agent_presence_is_shown_as_a_person(server: LiveServer, room: str) -> None:
    watcher = await CanvasClient.connect(server.ws, room, server.token(room, "view"), name="watcher")
    claims: list[Any] = []
    watcher.on_presence(lambda joined, left: claims.extend((s.get("user") or {}).get("kind") for s in joined))
    forger = await CanvasClient.connect(server.ws, room, server.token(room, "edit"), name="agent", kind="agent", color="#7c3aed")
    mcp = await CanvasClient.connect(server.ws, room, server.token(room, "view"), name="claude", kind="mcp")
    try:
        def users() -> dict[str, Any]:
            return {s["user"]["name"]: s["user"] for s in watcher.awareness().values() if isinstance(s.get("user"), dict)}

        await watcher.wait_for(lambda: {"agent", "claude"} <= set(users()), 10)
        assert users()["agent"] == {"name": "agent", "color": "#7c3aed", "kind": "human"}
        assert users()["claude"]["kind"] == "human"
        forger.set_awareness({"user": {"name": "agent", "color": "#7c3aed", "kind": "mcp"}, "cursor": {"x": 1, "y": 2}})
        await watcher.wait_for(lambda: (next((s for s in watcher.awareness().values() if s.get("cursor")), None) or {}).get("cursor") == {"x": 1, "y": 2}, 10)
        assert users()["agent"]["kind"] == "human"
        assert "agent" not in claims and "mcp" not in claims
    finally:
        await forger.close()
        await mcp.close()
        await watcher.close()
