"""Generative UI end to end (issue 22, "How it is checked"): a scripted model installs a
tic-tac-toe behaviour (test data: `tasks.ROTATED_PLAYER_JS`, generic geometry on a rotated
hand-drawn board) that also places a scoreboard text and a "New game" button. A headless person
plays X to the end and the scoreboard counts the game; in a real browser a viewer's click on "New
game" is refused, an editor's click clears every mark (the person's X's too) and play starts again.

Real `inhabit serve` with the agent, the real `anthropic` client against the scripted
Messages-API server, headless Chromium through the page, a real Python peer; nothing intercepted."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from canvas import Widget

from support.agent_helpers import board_strokes, connect, post_prompt, scripted_env, wait_run
from support.behaviour_helpers import human_move, install_script, marks, wait_behaviour, winner, x_strokes
from support.pages import ARTIFACTS, canvas_has_ink, in_thread, open_page
from support.tasks import ROTATED_PLAYER_JS, ROTATION, rotate

pytestmark = pytest.mark.timeout(180)

GAME_JS = ROTATED_PLAYER_JS.replace(
    "if (!state.grid) {",
    """if (!state.score) {  // the scoreboard and the New game button, placed once beside the board
  state.wins = {X: 0, O: 0, draws: 0};
  state.score = canvas.text({x: 480, y: 80, text: 'X 0 – O 0', size: 28});
  state.newGame = canvas.button({x: 480, y: 150, label: 'New game'});
}
if (event.type === 'press' && event.widget.id === state.newGame) {  // clear every mark, the person's too
  for (const s of canvas.strokes()) if (!(state.grid?.lines ?? []).includes(s.id)) canvas.erase(s.id);
  state.board = Array(9).fill(''); state.over = false;
}
if (!state.grid) {""",
    1,
).replace(
    """if (w || !board.some(m => !m)) {
  const result = w ? `${w} wins!` : 'A draw!';
  canvas.say(`Game over: ${result}`);
  behaviour.stop(result);
}""",
    """if (!state.over && (w || !board.some(m => !m))) {  // over: count it, and wait for New game
  state.over = true;
  state.wins[w || 'draws'] += 1;
  const {X, O, draws} = state.wins;
  canvas.update(state.score, {text: `X ${X} – O ${O}` + (draws ? ` · ${draws} draw${draws > 1 ? 's' : ''}` : '')});
  canvas.say(`Game over: ${w ? w + ' wins!' : 'a draw!'} Press New game to play again.`);
}""",
).replace("if (!winner(board) && free.length", "if (!state.over && event.type === 'stroke' && !winner(board) && free.length")


def unrotate(s: Any) -> Any:
    return rotate(s, -ROTATION)


def scoreboard(widgets: list[Widget]) -> Widget | None:
    return next((w for w in widgets if w.type == "text" and w.text.startswith("X ")), None)


def test_a_tictactoe_behaviour_keeps_score_and_a_browser_presses_new_game(server_factory: Any, model_server: Any, browser: Any) -> None:
    room = "game-buttons"
    model_server.script(room, install_script(GAME_JS, ["stroke", "press"], "tictactoe", "You're on, with a scoreboard."))
    server = server_factory(env=scripted_env(model_server))

    async def play_to_the_end() -> dict[str, Any]:
        alice = await connect(server, room, "alice")
        try:
            alice.doc.add_strokes([rotate(s) for s in board_strokes()])
            run = await wait_run(server, room, (await post_prompt(server, room, "@agent tic-tac-toe, you're O; keep score")).json()["run"])
            assert run["status"] == "done", run
            b = await wait_behaviour(server, room, lambda b: b["name"] == "tictactoe")
            await alice.wait_for(lambda doc: scoreboard(doc.widgets()) is not None and any(w.type == "button" for w in doc.widgets()), 15)
            for _ in range(6):
                board = marks(alice.doc.strokes(), b["id"], unrotate)
                if winner(board) or len(board) == 9:
                    break
                k = human_move(board)
                noughts = sum(1 for s in alice.doc.strokes() if s.behaviour == b["id"])
                alice.doc.add_strokes([rotate(s) for s in x_strokes(k // 3, k % 3)])
                board[k] = "X"
                if winner(board) or len(board) == 9:
                    break
                await alice.wait_for(lambda doc, n=noughts: sum(1 for s in doc.strokes() if s.behaviour == b["id"]) > n, 15)
            final = marks(alice.doc.strokes(), b["id"], unrotate)
            w = winner(final)
            expected = f"X {int(w == 'X')} – O {int(w == 'O')}" + ("" if w else " · 1 draw")
            await alice.wait_for(lambda doc: (s := scoreboard(doc.widgets())) is not None and s.text == expected, 15)
            return {"bid": b["id"], "board": final, "score": expected, "strokes": len(alice.doc.strokes()),
                    "widgets": {w.type: w for w in alice.doc.widgets()}}
        finally:
            await alice.close()

    game = in_thread(play_to_the_end)
    assert len(game["board"]) == 9 or winner(game["board"]), game["board"]  # played to the end
    score, button = game["widgets"]["text"], game["widgets"]["button"]
    assert button.text == "New game" and button.behaviour == game["bid"] and not button.anyone

    page = open_page(browser, server, room)
    viewer = open_page(browser, server, room, role="view")
    for p in (page, viewer):
        p.wait_for_function(f"window.__inhabit.strokes().size === {game['strokes']} && window.__inhabit.stats().widgets === 2")
    # the page shows the text and the button where they are, the scoreboard as the behaviour wrote it
    assert page.evaluate("(id) => window.__inhabit.widgets.get(id).widget.text", score.id) == game["score"]
    boxes = {w.id: page.evaluate("(id) => window.__inhabit.widgetScreenBox(id)", w.id) for w in (score, button)}
    to_screen = "([x, y]) => { const r = window.__inhabit.renderer.canvas.getBoundingClientRect(); " \
                "const [sx, sy] = window.__inhabit.camera.toScreen(x, y); return [r.left + sx, r.top + sy] }"
    for w in (score, button):
        b = boxes[w.id]
        assert b and b["w"] > 20 and b["h"] > 10, boxes
        assert canvas_has_ink(page, int(b["x"]), int(b["y"]), int(b["w"]), int(b["h"])), w
        sx, sy = page.evaluate(to_screen, [w.x + 4, w.y + 4])  # just inside its placed corner
        assert b["x"] - 1 <= sx <= b["x"] + b["w"] and b["y"] - 1 <= sy <= b["y"] + b["h"], (b, w, sx, sy)
    assert boxes[button.id]["y"] > boxes[score.id]["y"]  # the button below the scoreboard, as placed
    page.screenshot(path=str(ARTIFACTS / "web-game-over.png"))

    # a viewer may not press New game (it was not made with `anyone`): the page does not offer it, and
    # the server refuses the view link's press itself; nothing changes
    b = boxes[button.id]
    assert not viewer.evaluate("(id) => window.__inhabit.presses.allowed(window.__inhabit.widgets.get(id).widget)", button.id)
    viewer.mouse.click(b["x"] + b["w"] / 2, b["y"] + b["h"] / 2)
    refused = httpx.post(f"{server.http}/rooms/{room}/widgets/{button.id}/press", params={"token": server.token(room, "view")}, timeout=30)
    assert refused.status_code == 403 and "edit links" in refused.json()["error"], refused.text
    viewer.wait_for_timeout(500)
    assert viewer.evaluate("window.__inhabit.strokes().size") == game["strokes"]

    # an editor's click: New game clears every mark, the person's X's too; the board and the score stay
    with page.expect_response(lambda r: "/widgets/" in r.url and r.url.split("?")[0].endswith("/press")) as answer:
        page.mouse.click(b["x"] + b["w"] / 2, b["y"] + b["h"] / 2)
    assert answer.value.status == 202 and answer.value.json() == {"ok": True}
    page.wait_for_function("window.__inhabit.strokes().size === 4", timeout=20000)  # the four board lines
    viewer.wait_for_function("window.__inhabit.strokes().size === 4", timeout=20000)
    assert page.evaluate("(id) => window.__inhabit.widgets.get(id).widget.text", score.id) == game["score"]

    # and play starts again: the person's X in the middle is answered by an O
    async def one_more_move() -> int:
        alice = await connect(server, room, "alice")
        try:
            await alice.wait_for(lambda doc: len(doc.strokes()) == 4, 10)
            alice.doc.add_strokes([rotate(s) for s in x_strokes(1, 1)])
            await alice.wait_for(lambda doc: any(s.behaviour == game["bid"] for s in doc.strokes()), 15)
            return len(marks(alice.doc.strokes(), game["bid"], unrotate))
        finally:
            await alice.close()

    assert in_thread(one_more_move) == 2  # the X and the behaviour's O
    page.wait_for_function("window.__inhabit.strokes().size === 7")  # 4 lines, an X of two strokes, an O
    page.screenshot(path=str(ARTIFACTS / "web-new-game.png"))
    assert not page.errors and not viewer.errors
