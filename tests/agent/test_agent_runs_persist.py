"""Run records survive a server restart: a real server subprocess, the real agent peer and
sandbox, a scripted model server; after a graceful restart the same record (status, code,
calls, strokes) is served over HTTP, undo still erases the run's strokes, and the undo flag
itself survives the next restart."""

from __future__ import annotations

import asyncio

import httpx

from support.agent_helpers import post_prompt, scripted_env, wait_run

DRAW_JS = "[canvas.draw({points: [[0,0],[40,40]]}), canvas.draw({points: [[40,0],[0,40]]})]"
FIELDS = ("id", "status", "prompt", "grant", "source", "code", "calls", "strokes", "tokens", "reply", "errors", "created", "finished")


def _get(server, path: str, role: str = "view") -> dict:
    r = httpx.get(f"{server.http}{path}", params={"token": server.token("persist", role)}, timeout=10)
    r.raise_for_status()
    return r.json()


def _stroke_ids(server) -> set[str]:
    return {s["id"] for s in _get(server, "/rooms/persist/strokes")["strokes"]}


async def _until(pred, timeout: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not pred():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_run_records_and_undo_survive_restart(server_factory, model_server):
    room = "persist"
    model_server.script(room, [{"tool": "execute", "input": {"code": DRAW_JS}}, {"text": "Drew an X."}])
    server = server_factory(env=scripted_env(model_server))

    r = await post_prompt(server, room, "@agent draw an X")
    assert r.status_code == 202, r.text
    before = await wait_run(server, room, r.json()["run"])
    assert before["status"] == "done" and before["code"] == [DRAW_JS], before
    assert len(before["strokes"]) == 2 and before["calls"], before
    assert set(before["strokes"]) <= _stroke_ids(server)

    server.restart()
    assert (server.data_dir / "runs.sqlite3").exists()

    after = _get(server, f"/rooms/{room}/runs/{before['id']}")
    assert {k: after[k] for k in FIELDS} == {k: before[k] for k in FIELDS}
    assert after["undone"] is False
    listed = _get(server, f"/rooms/{room}/runs")["runs"]
    assert [x["id"] for x in listed] == [before["id"]] and listed[0]["status"] == "done"
    assert set(before["strokes"]) <= _stroke_ids(server)  # the document persisted too

    r = httpx.post(f"{server.http}/rooms/{room}/runs/{before['id']}/undo", params={"token": server.token(room, "edit")}, timeout=30)
    assert r.status_code == 200, r.text
    assert sorted(r.json()["erased"]) == sorted(before["strokes"])
    await _until(lambda: not set(before["strokes"]) & _stroke_ids(server))
    assert _get(server, f"/rooms/{room}/runs/{before['id']}")["undone"] is True

    server.restart()
    again = _get(server, f"/rooms/{room}/runs/{before['id']}")
    assert again["undone"] is True and again["strokes"] == before["strokes"] and again["status"] == "done"
    r = httpx.get(f"{server.http}/rooms/{room}/runs/run-nope", params={"token": server.token(room, "view")}, timeout=10)
    assert r.status_code == 404
