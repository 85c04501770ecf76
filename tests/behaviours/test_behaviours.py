"""Behaviours in process, with the real sandbox and a real (unconnected) CanvasClient holding the
room's document: what a firing sees and keeps, replay, the scheduler's guards (own writes,
merging, rate limit, loop guard, failures, grants), bounds, the durable store and the API
reference the model searches. The same things against a live server: test_behaviours_e2e."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from agent.behaviours.firing import event_global, replay, run_firing
from agent.behaviours.installs import RunInstalls
from agent.behaviours.model import FiredEvent, Firing
from agent.behaviours.records import BehaviourRecords
from agent.behaviours.scheduler import Hosting, RoomBehaviours
from agent.behaviours.settings import BehaviourLimits
from agent.behaviours.store import BehaviourStore
from agent.contract.canvas import CanvasSession
from agent.contract.codemode import Reference, system_prompt, tools
from agent.contract.events import BadInstall, Every, Installer, parse_name, parse_triggers
from agent.sandbox import Sandbox
from canvas import Stroke
from wire.client import CanvasClient

from support.behaviour_helpers import ECHO_JS

ME = Installer(id="tok123456789", label="editor tok123")


@pytest.fixture(scope="module")
def sandbox():
    sb = Sandbox(workers=2)
    yield sb
    sb.close()


def stroke(i: int, author: str = "alice", **kw: Any) -> Stroke:
    return Stroke(id=f"s{i}", points=[10.0 * i, 0, 0.5, 10.0 * i + 5, 20, 0.5], author=author, t=1000 + i, **kw)


# ---- what the model sends ------------------------------------------------------------------


def test_triggers_are_checked_with_clear_errors():
    assert parse_triggers(["stroke", {"every": 5}]) == ["stroke", Every(every=5)]
    for bad, why in (([], "on must be a list"), (["strok"], "'stroke'"), ([{"every": 1}], "greater than or equal to 5"),
                     ("stroke", "valid list"), (["join", "join"], "at most once")):
        with pytest.raises(BadInstall, match=why):
            parse_triggers(bad)
    assert parse_name(None, ["stroke", Every(every=10)]) == "on stroke, every 10s"
    with pytest.raises(BadInstall):
        parse_name("x" * 41, ["stroke"])


def test_the_reference_declares_the_globals_only_to_runs_that_may_install():
    ref = Reference("write", behaviours=True)
    every = ref.search("")
    for decl in ("declare const event:", "declare let state:", "declare namespace behaviour", "function stop(", "function ask(", "function remove("):
        assert decl in every, decl
    assert "Behaviours: programs that keep running" in ref.search("behaviour")
    assert "same `name`" in ref.search("behaviour") and "behaviours.remove" in ref.search("remove behaviour")
    assert "declare const event" not in Reference("write").search("") and "declare const event" not in Reference("read").search("")
    assert "on" not in tools()[1]["input_schema"]["properties"] and {"on", "name"} <= set(tools(behaviours=True)[1]["input_schema"]["properties"])
    assert "Behaviours:" in system_prompt(name="a", room="r", grant="write", behaviours=True)
    assert "Behaviours:" not in system_prompt(name="a", room="r", grant="read")
    assert len(system_prompt(name="a", room="r", grant="write", behaviours=True)) < 4_400


# ---- one firing -----------------------------------------------------------------------------


async def fire(sandbox, code: str, event: FiredEvent, strokes: dict[str, Stroke], state: dict, fid: str = "bh-x.1-aaaa", **kw: Any):
    session = CanvasSession(dict(strokes), author="agent", run_id=fid, grant="write", behaviour="bh-x", id_prefix=fid, clock_ms=event.t)
    return await run_firing(sandbox, code, event=event_global(event, strokes), state=state, session=session, behaviour_id="bh-x",
                            name="x", seed=kw.pop("seed", 7), clock_ms=event.t, limits=None, state_bytes=kw.pop("state_bytes", 4096))


async def test_a_firing_sees_its_event_and_keeps_its_state(sandbox):
    strokes = {s.id: s for s in (stroke(1), stroke(2))}
    event = FiredEvent(type="stroke", t=1_700_000_000_123, by="alice", strokes=["s2"], count=2)
    code = "state.n = (state.n ?? 0) + 1; [event.type, event.by, event.count, event.strokes.map(s => s.id), Date.now(), behaviour.id, behaviour.name]"
    out = await fire(sandbox, code, event, strokes, {"n": 4})
    assert out.ok, out.record.error
    assert out.record.result == ["stroke", "alice", 2, ["s2"], 1_700_000_000_123, "bh-x", "x"]
    assert out.state == {"n": 5}


@pytest.mark.parametrize("code, message", [
    ("state = 3", "state must stay a JSON object"),
    ("state.big = 'x'.repeat(5000)", "at most 4096 bytes"),
    ("state.self = state", "not JSON-serialisable"),
    ("canvas.draw({points: [[0, 0], [1, 1]]}); throw new Error('boom')", "boom"),
])
async def test_a_failed_firing_keeps_nothing(sandbox, code, message):
    out = await fire(sandbox, code, FiredEvent(type="every", t=5), {}, {"n": 1})
    assert not out.ok and message in out.record.error.message and out.state is None


async def test_stop_and_ask_are_requests(sandbox):
    out = await fire(sandbox, "behaviour.ask('which way?'); behaviour.stop('done'); 1", FiredEvent(type="every", t=5), {}, {})
    assert out.ok and out.requests.stop == "done" and out.requests.ask == "which way?"
    out = await fire(sandbox, "behaviour.ask('a'); behaviour.ask('b')", FiredEvent(type="every", t=5), {}, {})
    assert not out.ok and "at most once" in out.record.error.message


async def test_a_firing_replays_from_its_record_to_the_same_writes(sandbox):
    strokes = {s.id: s for s in (stroke(1), stroke(2), stroke(3))}
    code = ECHO_JS + ";canvas.say('r=' + Math.random().toFixed(6));"
    event = FiredEvent(type="stroke", t=1_700_000_000_000, by="alice", strokes=["s2", "s3"])
    out = await fire(sandbox, code, event, strokes, {"seen": 1}, fid="bh-x.9-beef", seed=123)
    assert out.ok, out.record.error
    record = Firing(id="bh-x.9-beef", behaviour="bh-x", room="r", version=1, event=event, state_before={"seen": 1}, seed=123,
                    clock_ms=event.t, ok=True)
    again = await replay(sandbox, record, code, strokes, name="x", author="agent")
    assert [s.model_dump() for s in again.session.added] == [s.model_dump() for s in out.session.added]
    assert [m.model_dump() for m in again.session.said] == [m.model_dump() for m in out.session.said]
    assert again.state == out.state == {"seen": 3, "at": event.t}
    assert [s.id for s in out.session.added] == ["bh-x.9-beef.a1", "bh-x.9-beef.a2"]
    other = await replay(sandbox, record.model_copy(update={"seed": 124}), code, strokes, name="x", author="agent")
    assert [s.points for s in other.session.added] != [s.points for s in out.session.added]  # the seed is what made them


# ---- the scheduler, on a real document --------------------------------------------------------


class Room:
    """A room's behaviours on an unconnected CanvasClient: its document is the room."""

    def __init__(self, tmp: Path, sandbox: Sandbox, limits: BehaviourLimits | None = None, problem: Any = None) -> None:
        self.store = BehaviourStore(BehaviourRecords.open(tmp))
        self.problem: str | None = problem
        self.hosting = Hosting(store=self.store, sandbox=sandbox, limits=limits or BehaviourLimits(), grant_problem=lambda i: self.problem)
        self.client = CanvasClient("ws://127.0.0.1:1/rooms/r", {"name": "agent", "kind": "agent"})
        self.asked: list[tuple[str, str]] = []
        self.rb = RoomBehaviours("r", self.client, self.hosting, author="agent", ask=lambda b, t, recent: self.asked.append((b.id, t)) or True).start()

    async def install(self, code: str, on: list, name: str) -> dict:
        compact, _ = await RunInstalls(self.rb, ME).install(code, parse_triggers(on), name, run_id="run-1")
        return compact

    def strokes_of(self, bid: str) -> list[Stroke]:
        return [s for s in self.client.doc.strokes() if s.behaviour == bid]

    async def until(self, pred: Any, timeout: float = 10) -> None:
        async with asyncio.timeout(timeout):
            while not pred():
                await asyncio.sleep(0.01)

    async def close(self) -> None:
        await self.rb.close()
        self.store.close()


@pytest.fixture
async def room(tmp_path, sandbox):
    r = Room(tmp_path, sandbox)
    yield r
    await r.close()


async def test_own_strokes_never_fire_and_events_merge(room):
    compact = await room.install(ECHO_JS, ["stroke"], "echo")
    assert compact["ok"] and compact["behaviour"]["status"] == "active", compact
    b = room.store.list("r")[0]
    room.client.doc.add_strokes([stroke(1)])
    await room.until(lambda: b.firings == 1)
    await room.until(lambda: len(room.strokes_of(b.id)) == 1)
    for i in range(2, 6):  # four strokes, one transaction each, while the first firing may still run
        room.client.doc.add_strokes([stroke(i)])
    await room.until(lambda: len(room.strokes_of(b.id)) == 5)
    await asyncio.sleep(0.3)
    assert b.state["seen"] == 5 and len(room.strokes_of(b.id)) == 5  # its own five strokes fired nothing
    assert 2 <= b.firings <= 5


async def test_behaviours_that_trigger_each_other_stop_within_the_chain_bound(room):
    follow = "for (const s of event.strokes ?? []) canvas.draw({points: [[s.bbox.x1 + 5, s.bbox.y0], [s.bbox.x1 + 15, s.bbox.y1]]}); 1"
    for name in ("ping", "pong"):
        assert (await room.install(follow, ["stroke"], name))["ok"]
    room.client.doc.add_strokes([stroke(1)])
    await room.until(lambda: any(b.status == "paused" for b in room.store.list("r")))
    await asyncio.sleep(0.3)
    ping, pong = room.store.list("r")
    chain = room.hosting.limits.chain
    assert ping.firings + pong.firings <= 2 * chain
    paused = next(b for b in (ping, pong) if b.status == "paused")
    assert "kept reacting to behaviours' writes" in paused.reason
    assert any("kept reacting" in m.text and m.behaviour == paused.id for m in room.client.doc.messages())
    n = ping.firings + pong.firings
    room.client.doc.add_strokes([stroke(50)])  # a person acts again: the one still active answers once, and the chain ends
    await asyncio.sleep(0.5)
    assert ping.firings + pong.firings == n + 1


async def test_failures_pause_a_behaviour_with_a_chat_line(room):
    code = "if (event.type !== 'install') { canvas.draw({points: [[0, 0], [9, 9]]}); throw new Error('no idea what ' + event.by + ' drew'); } 1"
    assert (await room.install(code, ["stroke"], "fragile"))["ok"]
    b = room.store.list("r")[0]
    for i in range(3):
        room.client.doc.add_strokes([stroke(i)])
        await room.until(lambda i=i: b.firings == i + 1)
    assert b.status == "failed" and b.failures == 3 and "failed 3 times in a row" in b.reason and "no idea what alice drew" in b.reason
    assert room.strokes_of(b.id) == []
    line = [m for m in room.client.doc.messages() if m.behaviour == b.id]
    assert len(line) == 1 and "paused" in line[0].text and "Ask @agent to fix it" in line[0].text


async def test_an_invalid_grant_pauses_before_firing(room):
    assert (await room.install(ECHO_JS, ["stroke"], "echo"))["ok"]
    room.problem = "the link that installed it was revoked"
    room.client.doc.add_strokes([stroke(1)])
    b = room.store.list("r")[0]
    await room.until(lambda: b.status == "paused")
    assert b.reason == room.problem and b.firings == 0 and room.strokes_of(b.id) == []
    assert any("revoked" in m.text for m in room.client.doc.messages())


async def test_bounds_per_room_rate_and_size(tmp_path, sandbox):
    r = Room(tmp_path, sandbox, BehaviourLimits(per_room=2, firings_per_minute=2, code_chars=200))
    try:
        assert (await r.install("1", ["join"], "a"))["ok"] and (await r.install("2", ["join"], "b"))["ok"]
        full = await r.install("3", ["join"], "c")
        assert not full["ok"] and "has 2 behaviours" in full["error"]["message"] and len(r.store.list("r")) == 2
        again = await r.install("state.v = 2; 1", ["join", "leave"], "a")  # the same name replaces, even when full
        a = r.store.find("r", "a")
        assert again["ok"] and a.version == 2 and a.on == ["join", "leave"] and a.state == {"v": 2}
        big = await r.install("1;" + " " * 300, ["join"], "b")
        assert not big["ok"] and "at most 200 characters" in big["error"]["message"]
        echo = "state.n = (state.n ?? 0) + 1; canvas.draw({points: [[0, 0], [1, 1]]}); 1"
        assert (await r.install(echo, ["stroke"], "b"))["ok"]
        b = r.store.find("r", "b")
        for i in range(6):
            r.client.doc.add_strokes([stroke(i)])
            await asyncio.sleep(0.05)
        await r.until(lambda: b.firings == 2)
        await asyncio.sleep(0.3)
        assert b.firings == 2  # the rest wait, merged, for the bucket to refill (a minute for 2)
    finally:
        await r.close()
