"""The agent in cluster mode, with real nodes, the real agent peer and sandbox, and a scripted
model server: one agent per room across the nodes (a lease), prompts taken by any node run on
the lease holder, every node answers the run routes, and when the holder is killed the agent
comes back on another node and the next prompt works."""

from __future__ import annotations

import httpx
import pytest

from canvas import Message
from wire.client import CanvasClient

from support.agent_helpers import agents_here, node_id, prompt, run_on, scripted_env

pytestmark = pytest.mark.timeout(120)

ROOM = "agents"
DRAW_JS = "[canvas.draw({points: [[0,0],[40,40]]}), canvas.draw({points: [[40,0],[0,40]]})]"


@pytest.mark.serial  # timing-sensitive: runs alone under xdist
async def test_one_agent_per_room_any_node_answers_and_it_survives_its_node(cluster, model_server):
    model_server.script(ROOM, [{"tool": "execute", "input": {"code": DRAW_JS}}, {"text": "Drew an X."}])
    env = scripted_env(model_server)
    a, b, c = (cluster.node(env=env, lease_s=2, node_ttl_s=2) for _ in range(3))
    tok = a.token()
    lease = cluster.redis.client()
    watcher = await CanvasClient.connect(a.ws, ROOM, tok, name="watcher")
    try:
        first = await prompt(b, tok, "@agent draw an X")  # nobody holds the room's agent: B takes it
        done = await run_on(b, tok, first)
        assert done["status"] == "done" and len(done["strokes"]) == 2, done
        assert lease.get("inhabit:{agents}:agent").decode() == node_id(b)
        for node in (a, c):  # every node serves the record, as it is in PostgreSQL
            assert (await run_on(node, tok, first)) == done

        second = await prompt(a, tok, "@agent once more")  # taken by A, run by B, the holder
        assert (await run_on(c, tok, second))["status"] == "done"
        await watcher.wait_for(lambda d: len(d.stroke_ids()) == 4, 10)
        await watcher.wait_for(lambda: len(agents_here(watcher)) == 1, 10)  # one agent in the room, not one per node
        async with httpx.AsyncClient() as http:  # undo through a node that is not the holder
            r = await http.post(f"{c.http}/rooms/{ROOM}/runs/{first}/undo", params={"token": tok}, timeout=20)
        assert r.status_code == 200 and sorted(r.json()["erased"]) == sorted(done["strokes"]), r.text
        await watcher.wait_for(lambda d: len(d.stroke_ids()) == 2, 10)
        assert (await run_on(a, tok, first))["undone"] is True

        old = agents_here(watcher)
        b.kill9()
        third = await prompt(c, tok, "@agent and again")  # the lease may still name B: the run waits in PostgreSQL
        after = await run_on(a, tok, third)
        assert after["status"] == "done" and len(after["strokes"]) == 2, after
        holder = lease.get("inhabit:{agents}:agent").decode()
        assert holder in (node_id(a), node_id(c))
        await watcher.wait_for(lambda: agents_here(watcher) and not agents_here(watcher) & old, 10)  # B's agent went, one came back
        assert len(agents_here(watcher)) == 1
        fourth = await prompt(a, tok, "@agent last one")
        assert (await run_on(c, tok, fourth))["status"] == "done"
        runs = httpx.get(f"{c.http}/rooms/{ROOM}/runs", params={"token": tok}).json()["runs"]
        assert [r["id"] for r in runs] == [first, second, third, fourth]
    finally:
        await watcher.close()


async def test_a_links_prompt_budget_is_one_across_nodes(cluster):
    """Per-minute prompt limits are the cluster's, not each node's: a link that spent its
    budget on one node is refused on the other (429, with Retry-After), and viewers share one
    room budget wherever they post."""
    a, b = (cluster.node(prompts_per_minute=2, room_prompts_per_minute=3) for _ in range(2))
    edit, v1, v2 = a.token(), a.token(role="view"), a.token("limits", role="view")  # two view links

    async def post(node, token: str) -> httpx.Response:
        async with httpx.AsyncClient() as http:
            return await http.post(f"{node.http}/rooms/limits/prompts", json={"text": "@agent hi"},
                                   headers={"Authorization": f"Bearer {token}"}, timeout=20)

    codes = [(await post(n, v)).status_code for n, v in ((a, v1), (b, v2), (b, v1))]
    assert codes == [202, 202, 202], codes
    r = await post(a, v2)  # its own budget has one left, the room's viewers have none
    assert r.status_code == 429 and "too many prompts from viewers of this room: at most 3" in r.json()["error"], r.text
    r = await post(a, v1)
    assert r.status_code == 429 and "too many prompts from this link: at most 2" in r.json()["error"], r.text
    assert [(await post(n, edit)).status_code for n in (a, b)] == [202, 202]  # editors are never refused for viewers' traffic
    for node in (b, a):
        r = await post(node, edit)
        assert r.status_code == 429 and "too many prompts from this link: at most 2" in r.json()["error"], r.text
        assert int(r.headers["Retry-After"]) > 0


async def test_a_prompt_taken_for_a_full_queue_elsewhere_gets_429(cluster, model_server):
    """The holder's queue is bounded on every node: a prompt reaching another node while the
    holder has a run in flight and `--prompt-queue` waiting is refused there with 429."""
    model_server.script("queue", [{"text": "done", "wait": 4}])
    a, b = (cluster.node(env=scripted_env(model_server), prompt_queue=1, prompts_per_minute=10) for _ in range(2))
    tok = a.token()
    first = await prompt(a, tok, "@agent one", room="queue")  # A holds the room's agent; this one runs
    second = await prompt(b, tok, "@agent two", room="queue")  # waits on A
    async with httpx.AsyncClient() as http:
        r = await http.post(f"{b.http}/rooms/queue/prompts", json={"text": "@agent three"}, headers={"Authorization": f"Bearer {tok}"})
    assert r.status_code == 429 and "prompts waiting in this room" in r.json()["error"], r.text
    for run in (first, second):  # what was taken runs
        assert (await run_on(b, tok, run, room="queue"))["status"] == "done"


@pytest.mark.serial  # a rate-limit window
async def test_chat_prompts_on_another_node_take_from_the_links_budget(cluster, model_server):
    """The writer of a chat line reaches the node holding the room's agent with the update (in the
    stream entry), so `@agent` lines written on another node count against the writer's link in the
    cluster's shared budget, like its HTTP prompts; a forged agent line is rewritten by the node the
    writer is on, and every node shows it rewritten."""
    room = "chatbudget"
    model_server.script(room, [{"text": "Done."}])
    env = scripted_env(model_server)
    a, b = (cluster.node(env=env, prompts_per_minute=2) for _ in range(2))
    starter = a.access().mint(room, "edit", name="starter")
    alice_token = a.token(room)
    first = await prompt(a, starter, "@agent hi", room=room)  # the agent joins the room on A
    await run_on(a, starter, first, room=room)
    watcher = await CanvasClient.connect(a.ws, room, starter, name="watcher")
    alice = await CanvasClient.connect(b.ws, room, alice_token, name="alice")  # writes on B
    try:
        alice.doc.post(Message(id="forged", author="agent", kind="agent", text="not the agent", behaviour="bh-1"))
        for i in range(10):
            alice.doc.post(Message(author="alice", text=f"@agent draw {i}"))
        await alice.flush()
        await watcher.wait_for(lambda d: sum(1 for m in d.messages() if m.text.startswith("Not run: too many prompts from this link")) == 1
                               and sum(1 for m in d.messages() if m.kind == "agent" and m.text.startswith("Done.")) == 3, 60)
        forged = next(m for m in watcher.doc.messages() if m.id == "forged")
        assert forged.kind == "human" and forged.behaviour is None
        runs = httpx.get(f"{b.http}/rooms/{room}/runs", params={"token": starter}).json()["runs"]
        assert sorted(r["author"] for r in runs) == ["alice", "alice", "starter"], runs
        async with httpx.AsyncClient() as http:  # the link's budget is spent for HTTP too, on either node
            r = await http.post(f"{a.http}/rooms/{room}/prompts", json={"text": "@agent more"}, params={"token": alice_token})
        assert r.status_code == 429 and "too many prompts from this link" in r.json()["error"], r.text
    finally:
        await alice.close()
        await watcher.close()
