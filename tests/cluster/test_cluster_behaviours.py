"""Behaviours in cluster mode, with real nodes, the real agent peer and sandbox, and a scripted
model server: a behaviour lives in PostgreSQL and fires on the node holding its room's agent
lease only; any node lists it and takes people's changes to it (handed to the holder); when the
holder is killed, another node takes the room over and the behaviour goes on from its saved
state; a schedule fires once per period across the cluster, not once per node, with nobody
connected, and survives its node too."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from canvas import Stroke, new_id
from wire.client import CanvasClient

from support.agent_helpers import agents_here, node_id, prompt, run_on, scripted_env
from support.behaviour_helpers import ECHO_JS, install_script

pytestmark = pytest.mark.timeout(150)

ROOM = "agents"  # the default room of the helpers
TICK_JS = "state.n = (state.n ?? 0) + 1; canvas.draw({points: [[state.n * 20, 0], [state.n * 20, 40]], color: '#2f9e44'}); state.n"


def listed(node, tok: str) -> list[dict]:
    r = httpx.get(f"{node.http}/rooms/{ROOM}/behaviours", params={"token": tok}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["behaviours"]


async def wait_listed(node, tok: str, pred, timeout: float = 30) -> dict:
    """The room's first behaviour, as `node` lists it, once `pred` holds for it."""
    for _ in range(int(timeout / 0.1)):
        found = listed(node, tok)
        if found and pred(found[0]):
            return found[0]
        await asyncio.sleep(0.1)
    raise AssertionError(f"not so on node {node.port} in {timeout} s: {listed(node, tok)}")


def holder(cluster) -> str | None:
    got = cluster.redis.client().get(f"inhabit:{{{ROOM}}}:agent")
    return got.decode() if got else None


def stroke(x: float) -> Stroke:
    return Stroke(id=new_id("p"), points=[x, 100, 0.5, x + 30, 130, 0.5], author="bob")


def echoes(c: CanvasClient, bid: str) -> int:
    return sum(1 for s in c.doc.strokes() if s.behaviour == bid)


@pytest.mark.serial  # timing-sensitive: runs alone under xdist
async def test_a_behaviour_fires_on_its_holder_only_any_node_changes_it_and_it_survives_its_node(cluster, model_server):
    model_server.script(ROOM, install_script(ECHO_JS, ["stroke"], "underline"))
    env = scripted_env(model_server)
    a, b = (cluster.node(env=env, lease_s=2, node_ttl_s=2) for _ in range(2))
    tok = a.token()
    bob = await CanvasClient.connect(b.ws, ROOM, tok, name="bob")  # people are on B
    try:
        run = await prompt(a, tok, "@agent underline what I draw")  # nobody holds the room's agent: A takes it
        done = await run_on(b, tok, run)
        assert done["status"] == "done", json.dumps(done)
        assert holder(cluster) == node_id(a)
        beh = listed(b, tok)[0]  # B lists it: read from PostgreSQL
        assert beh["name"] == "underline" and beh["status"] == "active"

        bob.doc.add_strokes([stroke(0)])
        await bob.wait_for(lambda: echoes(bob, beh["id"]) == 1, 15)  # fired on A, seen on B
        await wait_listed(b, tok, lambda x: x["firings"] == 1 and x["state"]["seen"] == 1)

        async with httpx.AsyncClient() as http:  # B takes the change, A (the holder) makes it
            r = await http.post(f"{b.http}/rooms/{ROOM}/behaviours/{beh['id']}/pause", params={"token": tok}, timeout=20)
            assert r.status_code == 200 and r.json()["status"] == "paused", r.text
            assert listed(a, tok)[0]["status"] == "paused"
            bob.doc.add_strokes([stroke(100)])
            await asyncio.sleep(1.5)  # a paused behaviour does not fire (a firing takes ~10 ms here)
            assert echoes(bob, beh["id"]) == 1
            r = await http.post(f"{b.http}/rooms/{ROOM}/behaviours/{beh['id']}/resume", params={"token": tok}, timeout=20)
            assert r.status_code == 200 and r.json()["status"] == "active", r.text
            bad = await http.post(f"{b.http}/rooms/{ROOM}/behaviours/nope/pause", params={"token": tok}, timeout=20)
            assert bad.status_code == 404 and "no such behaviour" in bad.json()["error"]
            viewer = await http.post(f"{b.http}/rooms/{ROOM}/behaviours/{beh['id']}/pause", params={"token": a.token(role="view")}, timeout=20)
            assert viewer.status_code == 403, viewer.text

        old = agents_here(bob)
        a.kill9()  # the holder dies: B takes the room's agent over, with the behaviour and its state
        await bob.wait_for(lambda: agents_here(bob) and not agents_here(bob) & old, 20)
        assert holder(cluster) == node_id(b)
        bob.doc.add_strokes([stroke(200)])
        await bob.wait_for(lambda: echoes(bob, beh["id"]) == 2, 15)
        after = await wait_listed(b, tok, lambda x: x["firings"] == 2)
        assert after["state"]["seen"] == 2  # went on from the state saved by A: one stroke seen there, one here
        async with httpx.AsyncClient() as http:
            detail = (await http.get(f"{b.http}/rooms/{ROOM}/behaviours/{beh['id']}", params={"token": tok})).json()
            assert [f["ok"] for f in detail["firings"]] == [True, True]
            r = await http.delete(f"{b.http}/rooms/{ROOM}/behaviours/{beh['id']}", params={"token": tok}, timeout=20)
            assert r.status_code == 200 and r.json()["removed"] is True
        assert listed(b, tok) == []
    finally:
        await bob.close()


@pytest.mark.serial  # timing-sensitive: runs alone under xdist
async def test_a_schedule_fires_once_per_period_across_nodes_and_survives_its_node(cluster, model_server):
    model_server.script(ROOM, install_script(TICK_JS, [{"every": 5}], "ticker"))
    env = {**scripted_env(model_server), "INHABIT_AGENT_IDLE_S": "1"}
    a, b, c = (cluster.node(env=env, lease_s=2, node_ttl_s=2) for _ in range(3))
    tok = a.token()
    run = await prompt(b, tok, "@agent draw a tick every 5 seconds")  # nobody is in the room
    assert (await run_on(a, tok, run))["status"] == "done"
    first = holder(cluster)
    beh = await wait_listed(c, tok, lambda x: x["firings"] >= 2, timeout=30)
    by_id = {node_id(n): n for n in (a, b, c)}
    by_id[first].kill9()  # its holder dies: another node fires it from then on
    survivors = [n for i, n in by_id.items() if i != first]
    after = await wait_listed(survivors[0], tok, lambda x: x["firings"] >= beh["firings"] + 2, timeout=40)
    assert holder(cluster) in {node_id(n) for n in survivors}
    watcher = await CanvasClient.connect(survivors[1].ws, ROOM, tok, name="watcher")
    try:
        ticks = sorted(s.points[0] for s in watcher.doc.strokes() if s.behaviour == beh["id"])
        n = after["state"]["n"]
        # every firing drew the tick of its own count: once per period, never twice (one holder at
        # a time), and the count went on across the holder's death
        assert n >= 4 and ticks[:n] == [20.0 * k for k in range(1, n + 1)], (n, ticks)
        assert len(ticks) == len(set(ticks)), ticks
        stamps = [f["clock_ms"] for f in json.loads(httpx.get(f"{c.http}/rooms/{ROOM}/behaviours/{beh['id']}", params={"token": tok}).text)["firings"]]
        gaps = [x - y for x, y in zip(stamps, stamps[1:], strict=False)]
        assert all(g >= 4_000 for g in gaps), gaps  # newest first: never two firings within a period
    finally:
        await watcher.close()
