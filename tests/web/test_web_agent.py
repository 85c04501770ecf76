"""Browser + agent: a prompt typed in the panel runs (scripted model), shows status/code/calls, and Undo run
erases it through the server, which records the run as undone."""

from __future__ import annotations

from typing import Any

import httpx

from support.pages import ARTIFACTS, open_page

CIRCLE_JS = r"""
const pts = [];
for (let i = 0; i <= 40; i++) { const a = i / 40 * 2 * Math.PI; pts.push([400 + 120 * Math.cos(a), 330 + 120 * Math.sin(a)]); }
canvas.draw({ points: pts, color: '#1971c2', width: 6 });
canvas.draw({ points: [[340, 300], [360, 300]], color: '#1e1e1e', width: 10 });
"""


def test_prompt_box_runs_agent_and_undo_run(server_factory: Any, model_server: Any, browser: Any) -> None:
    room = "webagent"
    model_server.script(room, [{"tool": "execute", "input": {"code": CIRCLE_JS}}, {"text": "Drew a face-ish circle."}])
    server = server_factory(env={"ANTHROPIC_BASE_URL": model_server.url, "ANTHROPIC_API_KEY": "test", "INHABIT_MODEL": "scripted-model"})
    a = open_page(browser, server, room)
    b = open_page(browser, server, room)
    records: list[str] = []  # GET /runs/{id}: fetched only when a card's code or calls are opened
    a.on("request", lambda r: records.append(r.url) if r.method == "GET" and "/runs/" in r.url else None)
    a.fill("[data-testid=prompt-input]", "@agent draw a circle")
    a.click("[data-testid=prompt-send]")
    run = a.locator("[data-testid=run]").first
    run.wait_for(timeout=20000)
    a.wait_for_selector("[data-testid=run] [data-testid=run-status][data-status=done]", timeout=30000)
    b.wait_for_function("window.__inhabit.strokes().size === 2")
    run_id = run.get_attribute("data-run-id")
    strokes_before = b.evaluate("Array.from(window.__inhabit.strokes().values())")
    assert all(s["run"] == run_id and s["kind"] == "agent" for s in strokes_before)
    assert records == []
    run.locator("[data-testid=run-code] summary").click()
    run.locator("[data-testid=run-code] pre").first.wait_for()
    assert len(records) == 1
    assert "canvas.draw" in run.locator("[data-testid=run-code]").inner_text()
    assert a.locator("[data-testid=message][data-kind=agent]").count() >= 1
    a.wait_for_timeout(200)
    a.screenshot(path=str(ARTIFACTS / "web-agent-run.png"))
    with a.expect_response(lambda r: r.url.split("?")[0].endswith(f"/runs/{run_id}/undo")) as answer:
        run.locator("[data-testid=run-undo]").click()
    assert answer.value.request.method == "POST" and answer.value.status == 200
    assert sorted(answer.value.json()["erased"]) == sorted(s["id"] for s in strokes_before)
    b.wait_for_function("window.__inhabit.strokes().size === 0")
    a.wait_for_selector(f"[data-testid=run][data-run-id='{run_id}'][data-undone=true]")
    record = httpx.get(f"{server.http}/rooms/{room}/runs/{run_id}", params={"token": server.token(room, "edit")}).json()
    assert record["undone"] is True
    assert not a.errors and not b.errors
