"""Behaviours end to end: a real server subprocess, the real agent peer, the real `anthropic`
client talking to a scripted Messages-API server, the real sandbox, headless clients as people.

The scenario: a person draws a board and an X and says "@agent let's play, you're O"; the model
answers with ONE execute carrying `on: ["stroke"]` (the program is test data, in
tests/behaviour_helpers.py); from then on an O lands after every X, with no model call, across
a server restart, until the game ends and the behaviour says so and stops itself.
"""

from __future__ import annotations

import asyncio

from canvas import Stroke

from agent_helpers import board_strokes, connect, post_prompt, scripted_env, wait_chat, wait_run
from behaviour_helpers import PLAYER_JS, behaviours, cell_of_stroke, install_script, wait_behaviour, x_strokes

LINES = [(0, 1, 2), (3, 4, 5), (6, 7, 8), (0, 3, 6), (1, 4, 7), (2, 5, 8), (0, 4, 8), (2, 4, 6)]


def winner(board: dict[int, str]) -> str:
    for a, b, c in LINES:
        if board.get(a) and board.get(a) == board.get(b) == board.get(c):
            return board[a]
    return ""


def human_move(board: dict[int, str]) -> int:
    """The person's move: win, else block, else the first free cell (so the game lasts)."""
    free = [k for k in range(9) if k not in board]
    for mark in ("X", "O"):
        for k in free:
            if winner({**board, k: mark}) == mark:
                return k
    return free[0]


def marks(strokes: list[Stroke], bid: str) -> dict[int, str]:
    """The board as the strokes show it: cells holding an O of the behaviour, or an X (two strokes)."""
    board: dict[int, str] = {}
    xs: dict[int, int] = {}
    for s in strokes:
        cell = cell_of_stroke(s)
        if cell is None:
            continue
        k = cell[0] * 3 + cell[1]
        if s.behaviour == bid:
            board[k] = "O"
        elif s.kind == "human":
            xs[k] = xs.get(k, 0) + 1
    board.update({k: "X" for k, n in xs.items() if n >= 2})
    return board


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
        assert list(tools) == ["search", "execute"] and {"on", "name"} <= set(tools["execute"]["input_schema"]["properties"])
        # a stopped behaviour fires no more
        n, ours = len(bob.doc.strokes()), sum(1 for s in bob.doc.strokes() if s.behaviour == bid)
        alice.doc.add_strokes(x_strokes(0, 0))
        await bob.wait_for(lambda: len(bob.doc.strokes()) == n + 2, 10)
        await asyncio.sleep(0.5)
        assert sum(1 for s in bob.doc.strokes() if s.behaviour == bid) == ours
    finally:
        await alice.close()
        await bob.close()
