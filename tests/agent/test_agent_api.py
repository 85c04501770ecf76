"""The canvas API as capabilities, in the real sandbox, without a server: snapshot reads,
buffered writes committed as one transaction, nothing written on failure, quotas, grants,
the generated reference the model searches, and the prompt/addressing rules."""

from __future__ import annotations

import pytest

from agent.contract.canvas import ALL_CAPS, READ_CAPS, CanvasSession, Quotas, undo_run
from agent.contract.codemode import TOOLS, CodeMode, Reference, system_prompt
from agent.hosting.chat_prompts import addressed
from agent.runs.store import AgentRun, RunStore
from canvas import CanvasDoc, Stroke


def room(n: int = 3) -> CanvasDoc:
    doc = CanvasDoc()
    doc.add_strokes(Stroke(id=f"s{i}", points=[10.0 * i, 0, 0.5, 10.0 * i + 5, 20, 0.7], author="ann" if i else "bob", t=i) for i in range(n))
    return doc


def transactions(doc: CanvasDoc) -> list[int]:
    seen: list[int] = []
    doc.doc.observe(lambda ev: seen.append(1))
    return seen


@pytest.fixture(scope="module")
def code_mode():
    return CodeMode()


async def run(code_mode: CodeMode, doc: CanvasDoc, code: str, grant: str = "write", quotas: Quotas | None = None):
    session = CanvasSession.of(doc, author="agent", run_id="run-1", grant=grant, quotas=quotas)  # type: ignore[arg-type]
    compact, record = await code_mode.execute(code, session, lambda s: s.commit(doc))
    return compact, record, session


async def test_reads_are_plain_data(code_mode):
    doc = room()
    compact, record, _ = await run(code_mode, doc, "const s = canvas.strokes(); ({n: s.length, first: s[0], b: canvas.bounds(), one: canvas.stroke('s2').author, none: canvas.stroke('nope'), mine: canvas.strokes({author: 'bob'}).length, box: canvas.strokes({box: {x0: 0, y0: 0, x1: 6, y1: 6}}).map(k => k.id)})")
    assert record.ok, record.error
    res = compact["result"]
    assert res["n"] == 3 and res["one"] == "ann" and res.get("none") is None and res["mine"] == 1 and res["box"] == ["s0"]
    assert res["first"]["points"] == [[0, 0], [5, 20]] and res["first"]["pressure"] == [0.5, 0.7]
    assert res["first"]["bbox"] == {"x0": 0, "y0": 0, "x1": 5, "y1": 20}
    assert res["b"] == {"x0": 0, "y0": 0, "x1": 25, "y1": 20}


async def test_writes_land_in_one_transaction_tagged_with_the_run(code_mode):
    doc = room()
    seen = transactions(doc)
    compact, record, session = await run(code_mode, doc, "const a = canvas.draw({points: [[0,0],[10,10]], color: '#FF0000'}); const b = canvas.draw({points: [[5,5,0.2]]}); canvas.erase('s0'); canvas.say('hi'); canvas.strokes().length")
    assert record.ok, record.error
    assert compact["result"] == 4  # reads see the run's own pending writes
    assert len(seen) == 1
    added = [doc.stroke(i) for i in compact["written"]["drawn"]]
    assert all(s is not None and s.kind == "agent" and s.run == "run-1" and s.author == "agent" for s in added)
    assert added[0].color == "#ff0000" and doc.stroke("s0") is None
    assert doc.messages()[-1].text == "hi" and doc.messages()[-1].run == "run-1"
    seen.clear()
    assert sorted(undo_run(doc, "run-1")) == sorted(session.added[i].id for i in range(2))
    assert len(seen) == 1 and {s.id for s in doc.strokes()} == {"s1", "s2"}


@pytest.mark.parametrize("code, kind, message, hint", [
    ("canvas.draw({points: [[0,0],[1,1]]}); throw new Error('boom')", "js", "Error: boom", "Fix the error"),
    ("canvas.draw({points: [[0,0],[1,1]]}); canvas.draw({points: 'nope'})", "capability", "canvas.draw: stroke.points (argument 1)", "Check argument shapes"),
    ("canvas.draw({points: [[0,0],[1,1]], color: 'red'})", "capability", "color must look like #rrggbb", "Fix the error"),
    ("for (let i = 0; i < 50; i++) canvas.draw({points: [[i,0],[i,1]]})", "capability", "quota: at most 10 strokes per run", "Draw fewer strokes"),
    ("canvas.draw({points: Array.from({length: 500}, (_, i) => [i, i])})", "capability", "quota: at most 100 points per run", "Draw fewer strokes"),
    ("canvas.draw({points: [[0,0],[1,1]]}); while (true) {}", "timeout", "timed out after", "ran too long"),
], ids=["thrown", "bad-argument", "bad-color", "stroke-quota", "point-quota", "timeout"])
async def test_a_failed_run_writes_nothing(code_mode, code, kind, message, hint):
    doc = room()
    seen = transactions(doc)
    compact, record, _ = await run(code_mode, doc, code, quotas=Quotas(max_strokes=10, max_points=100))
    assert not record.ok and not compact["ok"]
    assert compact["error"]["kind"] == kind, compact["error"]
    assert message in compact["error"]["message"], compact["error"]
    assert compact["next"].startswith("Nothing was written") and hint in compact["next"], compact["next"]
    assert "written" not in compact and "result" not in compact
    assert seen == [] and len(doc.strokes()) == 3


async def test_read_grant_has_no_write_functions(code_mode):
    doc = room()
    compact, record, _ = await run(code_mode, doc, "[typeof canvas.draw, typeof canvas.erase, typeof canvas.say, canvas.strokes().length]", grant="read")
    assert record.ok, record.error
    assert compact["result"] == ["undefined", "undefined", "undefined", 3]


def test_reference_is_generated_from_the_capabilities():
    ref = Reference("write")
    every = ref.search("")
    for cap in ALL_CAPS:
        assert cap.name.split(".")[1] in every
    assert "canvas.draw" in ref.search("draw circle")
    assert "No match" in ref.search("zzqx")
    ro = Reference("read")
    assert "function draw" not in ro.search("") and "function strokes" in ro.search("")
    assert "function button" not in ro.search("") and "function widgets" in ro.search("")  # issue 22: widgets are read too (and, issue 21, people)
    assert {"canvas.strokes", "canvas.stroke", "canvas.bounds", "canvas.people", "canvas.widgets"} <= {c.name for c in READ_CAPS}
    assert not {"canvas.draw", "canvas.erase", "canvas.say", "canvas.text", "canvas.button", "canvas.update"} & {c.name for c in READ_CAPS}


def test_prompt_is_small_and_tools_are_two():
    text = system_prompt(name="agent", room="lobby", grant="write")
    assert len(text) < 4_400, len(text)  # ~1,000 tokens at ~4 chars/token
    assert "y grows DOWNWARDS" in text and "lobby" in text
    assert [t["name"] for t in TOOLS] == ["search", "execute"]


@pytest.mark.parametrize("text, prompt", [
    ("@agent your move", "your move"),
    ("@Agent, draw a cat", "draw a cat"),
    ("@claude hi", "hi"),
    ("claude: hi", "hi"),
    ("agent is cool", None),
    ("hello @agent", None),
    ("@agentsmith hi", None),
])
def test_addressing(text, prompt):
    assert addressed(text, "claude") == prompt


def test_run_store_is_bounded():
    store = RunStore(per_room=3)
    runs = [store.add(AgentRun(room="r", prompt=str(i), status="done")) for i in range(5)]
    assert [r.prompt for r in store.list("r")] == ["2", "3", "4"]
    assert store.get("r", runs[4].id) is runs[4] and store.get("r", runs[0].id) is None
