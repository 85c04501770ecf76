"""Cluster mode: an MCP client's behaviour is installed on the node holding the room's agent, like
any other, whichever node the client reached: the install is handed to the holder, the behaviour
fires there on a person's stroke made on another node, and every node lists it with the client's
link as its installer."""

from __future__ import annotations

import httpx
import pytest

from canvas import Stroke, new_id
from wire.client import CanvasClient

from support.agent_helpers import node_id
from support.mcp_helpers import mcp_client, payload

pytestmark = [pytest.mark.timeout(120), pytest.mark.serial]

ROOM = "mcp-cluster"
MARK = "for (const s of event.strokes ?? []) canvas.draw({points: [[s.bbox.x0, s.bbox.y1 + 10], [s.bbox.x1, s.bbox.y1 + 10]]}); 1"


async def test_an_mcp_install_on_any_node_lands_on_the_rooms_holder(cluster):
    a, b = cluster.node(), cluster.node()
    link_a = a.access().mint(ROOM, "edit", name="Ada")
    link_b = b.access().mint(ROOM, "edit", name="Bea")
    bob = await CanvasClient.connect(b.ws, ROOM, b.token(ROOM, "edit"), name="bob")
    try:
        async with mcp_client(a, ROOM, name="first", token=link_a) as c:  # nobody holds the room's agent: A takes it
            first = payload(await c.call_tool("execute", {"code": MARK, "on": ["stroke"], "name": "first"}))
            assert first["ok"], first
        assert cluster.redis.client().get(f"inhabit:{{{ROOM}}}:agent").decode() == node_id(a)
        async with mcp_client(b, ROOM, name="second", token=link_b) as c:  # B hands its install to A
            second = payload(await c.call_tool("execute", {"code": MARK, "on": ["stroke"], "name": "second"}))
            assert second["ok"], second
        listed = httpx.get(f"{b.http}/rooms/{ROOM}/behaviours", params={"token": b.token(ROOM, "view")}, timeout=10).json()["behaviours"]
        assert {(x["name"], x["installer"]) for x in listed} == {("first", "Ada"), ("second", "Bea")}
        ids = {x["id"] for x in listed}
        bob.doc.add_strokes([Stroke(id=new_id("p"), points=[10, 10, 0.5, 60, 40, 0.5], author="bob")])
        await bob.wait_for(lambda: {s.behaviour for s in bob.doc.strokes()} >= ids, 20)
        assert cluster.redis.client().get(f"inhabit:{{{ROOM}}}:agent").decode() == node_id(a)  # they fired on A
    finally:
        await bob.close()
