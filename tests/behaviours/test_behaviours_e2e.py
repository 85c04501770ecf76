"""Behaviours end to end: a real server subprocess, the real agent peer, the real `anthropic`
client talking to a scripted Messages-API server, the real sandbox, headless clients as people.

The scenario: a person draws a board and an X and says "@agent let's play, you're O"; the model
answers with ONE execute carrying `on: ["stroke"]` (the program is test data, in
tests/support/behaviour_helpers.py); from then on an O lands after every X, with no model call, across
a server restart, until the game ends and the behaviour says so and stops itself.
"""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from canvas import Message

from support.agent_helpers import board_strokes, connect, inhabit, post_prompt, scripted_env, wait_chat, wait_run
from support.behaviour_helpers import (
    ECHO_JS,
    PLAYER_JS,
    behaviours,
    cell_of_stroke,
    get,
    human_move,
    install_script,
    marks,
    post,
    wait_behaviour,
    winner,
    x_strokes,
)
from support.model_server import ModelServer


@pytest.fixture
def model_server(shared_model_server: ModelServer) -> ModelServer:
    """One scripted model server for the module (scripts are per room), which `agent_server` uses."""
    return shared_model_server


async def test_the_agent_keeps_playing_without_a_model_call_per_move(server_factory, model_server):
    room = "game"
    model_server.script(room, install_script(PLAYER_JS, ["stroke"], "tic-tac-toe", "You're on: I drew my O. Your move!"))
    server = server_factory(env=scripted_env(model_server))
    alice = await connect(server, room, "alice")
    bob = await connect(server, room, "bob", role="view")
    try:
        alice.doc.add_strokes(board_strokes())
        await bob.wait_for(lambda: len(bob.doc.strokes()) == 6, 10)
        r = await post_prompt(server, room, "@agent let's play tic-tac-toe, you're O")
        assert r.status_code == 202, r.text
        run = await wait_run(server, room, r.json()["run"])
        assert run["status"] == "done", run
        b = await wait_behaviour(server, room, lambda b: b["name"] == "tic-tac-toe")
        assert b["status"] == "active" and b["on"] == ["stroke"] and b["run"] == run["id"]
        bid = b["id"]
        # the install run played the first O at once: the model saw its program work on the room
        await bob.wait_for(lambda: any(s.behaviour == bid for s in bob.doc.strokes()), 10)
        assert set(run["strokes"]) == {s.id for s in bob.doc.strokes() if s.behaviour == bid}

        moves = 0
        while True:
            board = marks(bob.doc.strokes(), bid)
            assert len([v for v in board.values() if v == "O"]) == len([v for v in board.values() if v == "X"]), board
            if winner(board) or len(board) == 9:
                break
            k = human_move(board)
            o_before = {s.id for s in bob.doc.strokes() if s.behaviour == bid}
            if moves == 2:  # mid-game, the server restarts; the behaviour goes on from its saved state
                await alice.close()
                await bob.close()
                saved = behaviours(server, room)[0]
                server.restart()
                assert {k: behaviours(server, room)[0][k] for k in ("state", "status", "firings")} == {k: saved[k] for k in ("state", "status", "firings")}
                alice = await connect(server, room, "alice")  # and plays at once, before the agent is back in the room
            alice.doc.add_strokes(x_strokes(k // 3, k % 3))
            if moves == 2:
                bob = await connect(server, room, "bob", role="view")
            moves += 1
            board[k] = "X"
            if winner(board) or len(board) == 9:
                break  # the person's move ended the game: no O to come
            await bob.wait_for(lambda doc, ob=o_before: {s.id for s in doc.strokes() if s.behaviour == bid} - ob, 15)
            new = [s for s in bob.doc.strokes() if s.behaviour == bid and s.id not in o_before]
            assert len(new) == 1 and new[0].kind == "agent" and new[0].run.startswith(bid + "."), new  # attributed to a firing
            cell = cell_of_stroke(new[0])
            assert cell is not None and cell[0] * 3 + cell[1] not in board, (cell, board)  # an empty cell
        said = await wait_chat(bob, lambda m: m.behaviour == bid and "Game over" in m.text)
        final = marks(bob.doc.strokes(), bid)  # the person's last X is in: the line came after it
        result = f"{winner(final)} wins!" if winner(final) else "A draw!"
        assert said.text == f"Game over: {result}" and said.kind == "agent"
        done = await wait_behaviour(server, room, lambda b: b["id"] == bid and b["status"] == "stopped")
        assert done["reason"] == result and done["firings"] >= moves
        assert moves >= 3
        # ONE conversation for the whole game: the install turn and the reply, nothing per move
        reqs = model_server.requests_for(room)
        assert len(reqs) == 2 and reqs[0]["body"]["messages"][0] == reqs[1]["body"]["messages"][0]
        tools = {t["name"]: t for t in reqs[0]["body"]["tools"]}
        assert list(tools) == ["search", "execute", "view"] and {"on", "name"} <= set(tools["execute"]["input_schema"]["properties"])
        # a stopped behaviour fires no more
        n, ours = len(bob.doc.strokes()), sum(1 for s in bob.doc.strokes() if s.behaviour == bid)
        alice.doc.add_strokes(x_strokes(0, 0))
        await bob.wait_for(lambda: len(bob.doc.strokes()) == n + 2, 10)
        await asyncio.sleep(0.5)
        assert sum(1 for s in bob.doc.strokes() if s.behaviour == bid) == ours
    finally:
        await alice.close()
        await bob.close()


# ---- the other checks, each against a live server ----------------------------------------------


async def _echo(server, model_server, room: str, author: str = "alice", token: str | None = None) -> tuple[object, dict]:
    """A person in `room` and an echo behaviour installed by their prompt (sent with `token`)."""
    model_server.script(room, install_script(ECHO_JS, ["stroke"], "echo"))
    person = await connect(server, room, author)
    async with httpx.AsyncClient() as http:
        r = await http.post(f"{server.http}/rooms/{room}/prompts", json={"text": "@agent underline what I draw"},
                            headers={"Authorization": f"Bearer {token or server.token(room, 'edit')}"})
    assert r.status_code == 202, r.text
    assert (await wait_run(server, room, r.json()["run"]))["status"] == "done"
    return person, await wait_behaviour(server, room, lambda b: b["name"] == "echo")


async def test_a_firing_can_be_undone_and_replayed_from_its_record(agent_server, model_server):
    from agent.behaviours.firing import replay
    from agent.behaviours.model import Firing
    from agent.sandbox import Sandbox

    room = "echo"
    server = agent_server  # the module's: this test only needs rooms of its own
    alice, b = await _echo(server, model_server, room)
    try:
        alice.doc.add_strokes(board_strokes()[:2])  # one event: two strokes, one firing
        await alice.wait_for(lambda doc: len([s for s in doc.strokes() if s.behaviour == b["id"]]) == 2, 10)
        b = await wait_behaviour(server, room, lambda x: x["firings"] == 1 and x["state"].get("seen") == 2)
        await asyncio.sleep(0.5)
        assert behaviours(server, room)[0]["firings"] == 1  # its own two strokes did not fire it
        detail = get(server, f"/rooms/{room}/behaviours/{b['id']}").json()
        record = Firing.model_validate(detail["firings"][0])
        assert detail["code"] == ECHO_JS and record.kind == "behaviour" and record.ok and record.version == 1
        assert set(record.event.strokes) == {"h0", "h1"} and record.clock_ms == record.event.t and record.calls
        drawn = {s.id: s for s in alice.doc.strokes() if s.id in record.writes.drawn}
        assert len(drawn) == 2 and all(s.run == record.id and s.behaviour == b["id"] for s in drawn.values())

        # replay: the room as the firing saw it, its code version, its record: the same writes
        before = {s.id: s for s in alice.doc.strokes() if s.id not in drawn}
        sandbox = Sandbox(workers=1)
        try:
            again = await replay(sandbox, record, detail["code"], before, name=b["name"], author="agent")
        finally:
            sandbox.close()
        assert [s.model_dump() for s in again.session.added] == [drawn[i].model_dump() for i in record.writes.drawn]
        assert again.state == b["state"]

        # undo it: its strokes go in one transaction, the rest stays; viewers may not
        r = post(server, f"/rooms/{room}/behaviours/{b['id']}/firings/{record.id}/undo", role="view", room=room)
        assert r.status_code == 403
        r = post(server, f"/rooms/{room}/behaviours/{b['id']}/firings/{record.id}/undo", room=room)
        assert r.status_code == 200 and sorted(r.json()["erased"]) == sorted(drawn)
        await alice.wait_for(lambda doc: not any(doc.stroke(i) for i in drawn), 10)
        assert {"h0", "h1"} <= {s.id for s in alice.doc.strokes()}
        again_detail = get(server, f"/rooms/{room}/behaviours/{b['id']}").json()
        assert again_detail["firings"][0]["undone"] is True
        assert post(server, f"/rooms/{room}/behaviours/{b['id']}/firings/nope/undo", room=room).status_code == 404
    finally:
        await alice.close()


async def test_viewers_cannot_install_pause_or_remove(agent_server, model_server):
    room = "viewers"
    server = agent_server  # the module's: this test only needs rooms of its own
    alice, b = await _echo(server, model_server, room)
    try:
        # a viewer's prompt: the model is offered no `on`, and trying anyway installs nothing
        model_server.script(room, install_script(ECHO_JS, ["stroke"], "mine"))
        r = await post_prompt(server, room, "@agent install a behaviour", role="view")
        run = await wait_run(server, room, r.json()["run"])
        assert run["grant"] == "read" and any("read-only" in e and "cannot install" in e for e in run["errors"]), run
        tools = model_server.requests_for(room)[-1]["body"]["tools"]
        assert "on" not in tools[1]["input_schema"]["properties"]
        assert [x["name"] for x in behaviours(server, room)] == ["echo"]
        # routes: viewers read, editors change
        base = f"/rooms/{room}/behaviours/{b['id']}"
        assert get(server, base, room=room).status_code == 200
        for path in (base + "/pause", base + "/resume"):
            assert post(server, path, role="view", room=room).status_code == 403
        assert httpx.delete(f"{server.http}{base}", params={"token": server.token(room, "view")}).status_code == 403
        assert httpx.get(f"{server.http}/rooms/{room}/behaviours").status_code == 401
        r = post(server, base + "/pause", room=room)
        assert r.status_code == 200 and r.json()["status"] == "paused" and "paused by" in r.json()["reason"]
        alice.doc.add_strokes(board_strokes()[:1])  # a paused behaviour does not fire
        await asyncio.sleep(0.5)
        assert not [s for s in alice.doc.strokes() if s.behaviour == b["id"]]
        assert post(server, base + "/resume", room=room).json()["status"] == "active"
        alice.doc.add_strokes(board_strokes()[1:2])
        await alice.wait_for(lambda doc: [s for s in doc.strokes() if s.behaviour == b["id"]], 10)
        r = httpx.delete(f"{server.http}{base}", params={"token": server.token(room, "edit")})
        assert r.status_code == 200 and r.json() == {"id": b["id"], "removed": True}
        assert behaviours(server, room) == [] and get(server, base, room=room).status_code == 404
    finally:
        await alice.close()


async def test_a_revoked_installer_link_pauses_the_behaviour(agent_server, model_server):
    room = "revoked"
    server = agent_server  # the module's: this test only needs rooms of its own
    token = inhabit("token", room, "--role", "edit", "--name", "Carol", "--data", str(server.data_dir)).stdout.strip().splitlines()[-1]
    alice, b = await _echo(server, model_server, room, token=token)
    try:
        assert b["installer"] == "Carol"
        assert inhabit("revoke", token, "--data", str(server.data_dir)).returncode == 0
        line = await wait_chat(alice, lambda m: m.behaviour == b["id"] and "revoked" in m.text, 20)
        assert "paused" in line.text
        b = await wait_behaviour(server, room, lambda x: x["status"] == "paused")
        assert b["reason"] == "the link that installed it was revoked"
        r = post(server, f"/rooms/{room}/behaviours/{b['id']}/resume", room=room)
        assert r.status_code == 409 and "revoked" in r.json()["error"]
        alice.doc.add_strokes(board_strokes()[:1])
        await asyncio.sleep(0.5)
        assert not [s for s in alice.doc.strokes() if s.behaviour == b["id"]]
    finally:
        await alice.close()


async def test_stop_playing_reaches_the_model_which_removes_its_behaviour(agent_server, model_server):
    room = "stopit"
    server = agent_server  # the module's: this test only needs rooms of its own
    alice, b = await _echo(server, model_server, room)
    try:
        model_server.script(room, [{"tool": "execute", "input": {"code": "behaviours.remove('echo')"}}, {"text": "Stopped."}])
        alice.doc.post(Message(author="alice", text="@agent stop playing"))  # a chat line, as typed by a person
        await wait_chat(alice, lambda m: m.kind == "agent" and "Stopped." in m.text, 20)
        assert behaviours(server, room) == []
        ask = model_server.requests_for(room)[-2]["body"]
        assert "Behaviours in this room" in ask["messages"][0]["content"] and b["id"] in ask["messages"][0]["content"]
        assert "on" not in ask["tools"][1]["input_schema"]["properties"]  # a chat line's sender is unknown: it may not install
        result = json.loads(model_server.requests_for(room)[-1]["body"]["messages"][-1]["content"][0]["content"])
        assert result["removed"] == [b["id"]]
        n = len(alice.doc.strokes())
        alice.doc.add_strokes(board_strokes()[:1])
        await asyncio.sleep(0.5)
        assert len(alice.doc.strokes()) == n + 1
    finally:
        await alice.close()


async def test_a_behaviour_asks_the_model(agent_server, model_server):
    room = "asks"
    code = "if (event.type === 'message' && /\\?$/.test(event.message.text)) behaviour.ask('A person asked: ' + event.message.text); 1"
    model_server.script(room, install_script(code, ["message"], "curious"))
    server = agent_server  # the module's: this test only needs rooms of its own
    alice = await connect(server, room, "alice")
    try:
        r = await post_prompt(server, room, "@agent tell me when someone asks a question")
        assert (await wait_run(server, room, r.json()["run"]))["status"] == "done"
        b = await wait_behaviour(server, room, lambda x: x["name"] == "curious")
        model_server.script(room, [{"text": "It is a square."}])
        alice.doc.post(Message(author="alice", text="what is this shape?"))
        reply = await wait_chat(alice, lambda m: m.kind == "agent" and "It is a square." in m.text, 20)
        run = await wait_run(server, room, reply.run)
        assert run["source"] == "behaviour" and run["grant"] == "write" and run["status"] == "done"
        prompt = model_server.requests_for(room)[-1]["body"]["messages"][0]["content"]
        assert "A person asked: what is this shape?" in prompt and code in prompt and b["id"] in prompt
        assert "recent firings" in prompt and '"type":"message"' in prompt  # the firing that asked
        assert any(m.behaviour == b["id"] and "asks" in m.text for m in alice.doc.messages())
    finally:
        await alice.close()


async def test_every_fires_with_nobody_there_and_a_later_joiner_sees_it(server_factory, model_server):
    room = "clock"
    code = "state.n = (state.n ?? 0) + 1; canvas.draw({points: [[state.n * 20, 0], [state.n * 20, 40]], color: '#2f9e44'}); state.n"
    model_server.script(room, install_script(code, [{"every": 5}], "ticker"))
    server = server_factory(env={**scripted_env(model_server), "INHABIT_AGENT_IDLE_S": "1"}, unload_grace=0.2)
    r = await post_prompt(server, room, "@agent draw a tick every 5 seconds")  # nobody is in the room
    assert (await wait_run(server, room, r.json()["run"]))["status"] == "done"
    unloaded_at_start = _metric(server, "inhabit_rooms_unloaded_total")
    empty = False
    b = await wait_behaviour(server, room, lambda x: x["firings"] >= 2, timeout=30)
    deadline = asyncio.get_running_loop().time() + 20
    while not empty:  # between firings the agent leaves and the room unloads
        empty = _metric(server, "inhabit_rooms") == 0 and _metric(server, "inhabit_agent_peers") == 0
        assert asyncio.get_running_loop().time() < deadline, "the room never unloaded between firings"
        await asyncio.sleep(0.1)
    assert _metric(server, "inhabit_rooms_unloaded_total") > unloaded_at_start
    b = behaviours(server, room)[0]
    late = await connect(server, room, "late")
    try:
        ticks = [s for s in late.doc.strokes() if s.behaviour == b["id"]]
        assert len(ticks) >= b["firings"] >= 2 and all(s.color == "#2f9e44" for s in ticks)
        assert _metric(server, "inhabit_behaviour_firings_total") >= 2 and _metric(server, "inhabit_behaviour_failures_total") == 0
        assert _metric(server, "inhabit_behaviour_firing_seconds_p50") > 0
    finally:
        await late.close()


def _metric(server, name: str) -> float:
    for line in httpx.get(f"{server.http}/metrics", timeout=10).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


async def test_guards_hold_on_a_live_server(agent_server, model_server):
    """Two behaviours that answer each other's strokes stop within the chain bound; one that
    throws pauses after three failures; each says why in the chat, and failures write nothing."""
    follow = "for (const s of event.strokes ?? []) canvas.draw({points: [[s.bbox.x1 + 5, s.bbox.y0], [s.bbox.x1 + 15, s.bbox.y1]]}); 1"
    throws = "if (event.type !== 'install') { canvas.draw({points: [[0, 0], [9, 9]]}); throw new Error('cannot read this'); } 1"
    model_server.script("loops", [{"tool": "execute", "input": {"code": follow, "on": ["stroke"], "name": "ping"}},
                                  {"tool": "execute", "input": {"code": follow, "on": ["stroke"], "name": "pong"}}, {"text": "Both running."}])
    model_server.script("throws", install_script(throws, ["stroke"], "fragile"))
    server = agent_server  # the module's: this test only needs rooms of its own
    alice, carol = await connect(server, "loops", "alice"), await connect(server, "throws", "carol")
    try:
        for room in ("loops", "throws"):
            r = await post_prompt(server, room, "@agent go")
            assert (await wait_run(server, room, r.json()["run"]))["status"] == "done"
        assert {b["name"] for b in behaviours(server, "loops")} == {"ping", "pong"}
        alice.doc.add_strokes(board_strokes()[:1])
        paused = await wait_behaviour(server, "loops", lambda b: b["status"] == "paused")
        assert "kept reacting to behaviours' writes" in paused["reason"]
        line = await wait_chat(alice, lambda m: m.behaviour == paused["id"] and "kept reacting" in m.text)
        assert paused["name"] in line.text
        drawn = len([s for s in alice.doc.strokes() if s.behaviour])
        await asyncio.sleep(0.5)
        assert sum(b["firings"] for b in behaviours(server, "loops")) <= 2 * 8  # the chain bound (default 8), both of them
        assert len([s for s in alice.doc.strokes() if s.behaviour]) == drawn  # and it is over

        fragile = behaviours(server, "throws")[0]
        for i in range(3):
            carol.doc.add_strokes(board_strokes("carol")[i:i + 1])
            await wait_behaviour(server, "throws", lambda b, n=i + 1: b["firings"] == n)
        line = await wait_chat(carol, lambda m: m.behaviour == fragile["id"] and "failed 3 times in a row" in m.text)
        assert "cannot read this" in line.text
        fragile = behaviours(server, "throws")[0]
        assert fragile["status"] == "failed" and fragile["last"]["ok"] is False
        assert not [s for s in carol.doc.strokes() if s.behaviour]
    finally:
        await alice.close()
        await carol.close()
