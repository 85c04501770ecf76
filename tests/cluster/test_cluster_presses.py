"""Presses in cluster mode (issue 22, "Cluster mode"): a press reaching a node that does not hold
the room's behaviours is handed to the node that does, as pause/resume/remove are, and fires there.
Real nodes on a real Redis and PostgreSQL, the real agent peer and sandbox, a scripted model."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from canvas import Widget
from wire.client import CanvasClient

from support.agent_helpers import node_id, prompt, run_on, scripted_env
from support.behaviour_helpers import install_script

pytestmark = pytest.mark.timeout(150)

ROOM = "agents"  # the default room of the helpers
PING_JS = r"""
// A "Ping" button; each press draws a tick and counts it.
if (!state.ping) state.ping = canvas.button({x: 0, y: -100, label: 'Ping'});
if (event.type === 'press') {
  state.n = (state.n ?? 0) + 1;
  canvas.draw({points: [[state.n * 20, 0], [state.n * 20, 40]], color: '#2f9e44'});
}
state.n ?? 0
"""


def button(c: CanvasClient) -> Widget | None:
    return next((w for w in c.doc.widgets() if w.type == "button"), None)


@pytest.mark.serial  # timing-sensitive: runs alone under xdist
async def test_a_press_on_another_node_fires_on_the_holder(cluster, model_server):
    model_server.script(ROOM, install_script(PING_JS, ["press"], "ping"))
    env = scripted_env(model_server)
    a, b = (cluster.node(env=env, lease_s=2, node_ttl_s=2) for _ in range(2))
    tok = a.token()
    bob = await CanvasClient.connect(b.ws, ROOM, tok, name="bob")  # the person is on B
    try:
        run = await prompt(a, tok, "@agent give us a Ping button")  # A takes the room's agent
        assert (await run_on(b, tok, run))["status"] == "done"
        await bob.wait_for(lambda: button(bob) is not None, 15)
        btn = button(bob)
        assert btn is not None
        holder = cluster.redis.client().get(f"inhabit:{{{ROOM}}}:agent")
        assert holder is not None and holder.decode() == node_id(a)

        async with httpx.AsyncClient() as http:  # pressed on B: B hands it to A, which fires
            url = f"{b.http}/rooms/{ROOM}/widgets/{btn.id}/press"
            viewer = await http.post(url, params={"token": a.token(role="view")}, timeout=20)
            assert viewer.status_code == 403, viewer.text  # the holder's answer, through B
            r = await http.post(url, params={"token": tok}, timeout=20)
            assert r.status_code == 202, r.text
            await bob.wait_for(lambda: any(s.behaviour == btn.behaviour for s in bob.doc.strokes()), 15)
            for _ in range(100):  # the holder writes its firing records behind: B reads them from PostgreSQL
                beh = (await http.get(f"{b.http}/rooms/{ROOM}/behaviours/{btn.behaviour}", params={"token": tok})).json()
                if beh["firings"] and beh["behaviour"]["state"].get("n") == 1:  # its firing record and its state, both written
                    break
                await asyncio.sleep(0.1)
            assert [f["event"]["type"] for f in beh["firings"]] == ["press"] and beh["behaviour"]["state"]["n"] == 1
            missing = await http.post(f"{b.http}/rooms/{ROOM}/widgets/nope/press", params={"token": tok}, timeout=20)
            assert missing.status_code == 404
        presses = httpx.get(f"{b.http}/metrics").text
        assert "inhabit_presses_total 3.0" in presses
    finally:
        await bob.close()
