"""A rehearsal: a behaviour's program run on made-up events against a scratch copy of the room,
before it goes live (`execute` with `on` and `rehearse`).

Why: a behaviour's event-handling code otherwise runs for the first time in front of people (the
install run only sees `event.type == "install"`). Here it runs its install event and then each
made-up event in order, each one a firing exactly as the scheduler makes it (`firing.run_firing`:
a fresh VM, the firing's grant, the clock frozen at the event's time, `Math.random` seeded from
the firing id, the same limits), against a copy of the room: the made-up strokes and erasures
are applied to it, each successful firing's writes are applied to it, and `state` is carried
from one firing to the next. The result says, per firing, what it would have drawn, erased and
said, its error and where, and the state after. Nothing reaches the room, nothing is installed,
no firing record is written: the caller records the execute in its own run.

One entry point, `rehearse`, for both callers: the model loop (through `installs.RunInstalls`)
and the MCP endpoint's `execute`. It runs in the caller's `Share` of the sandbox, so a rehearsal
takes turns and spends CPU budget like the caller's other executes; its events are bounded
(`agent.contract.events.REHEARSAL_EVENTS`) and the caller's run bounds its time.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agent.behaviours.firing import Outcome, event_global, run_firing, seed_of
from agent.behaviours.model import FiredEvent
from agent.contract.canvas import CanvasSession, Grant, Quotas, Views
from agent.contract.events import Every, MadeUpErase, MadeUpEvent, MadeUpMessage, MadeUpStrokes, MessageView, Trigger, describe_triggers, firing_grant
from agent.contract.people import People
from agent.sandbox import Limits, OverBudget, RunError, Sandbox, Share
from canvas import Stroke, now_ms
from canvas.geometry import BBox, bbox
from common.actor import Actor, Role

CLIP_CHARS = 1_000
"""Of each firing's result, console and state, what the tool result shows (the last state: 4x)."""
DRAWN_SHOWN = 20
"""Strokes listed per firing (ids and boxes); the rest are counted."""
EVENT_GAP_MS = 1_000
"""Time between made-up events (a schedule's: its interval), as `Date.now()` reads it in their firings."""
_WHERE = re.compile(r"agent\.js:(\d+):(\d+)")

NEXT = ("Rehearsal only: nothing reached the room and nothing was installed. Fix the code and rehearse again, or execute "
        "again with the same code, on and name and without rehearse to install it.")


@dataclass(frozen=True)
class Bounds:
    """What bounds each firing: the sandbox's limits, the write quotas, the state's size, failures in a row."""

    limits: Limits | None
    quotas: Quotas | None
    state_bytes: int
    failures: int


async def rehearse(sandbox: Sandbox, code: str, *, name: str, triggers: list[Trigger], events: Sequence[MadeUpEvent],
                   strokes: Mapping[str, Stroke], author: str, installer: Actor, grant: Grant, bounds: Bounds, share: Share,
                   anyone: bool = False, state: dict[str, Any] | None = None, behaviour_id: str | None = None,
                   people: People | None = None, views: Views | None = None) -> dict[str, Any]:
    """Run `code` as behaviour `name` on its install event, then on each of `events` (parsed by
    `agent.contract.events.parse_rehearsal`), against a copy of `strokes` (the room's `RoomView`
    snapshot; `views`: its encoded views, reused for the room's own strokes). `author`: whose name
    its writes carry; `installer`: who installs it (the install event's actor), with `grant`;
    `state`: the state it would start from (a replaced behaviour's); `behaviour_id`: its id if it
    replaces one. Returns the tool result (JSON): per firing, the event, ok or the error (with
    line and column), what it would have drawn, erased and said, and the state after."""
    rid = "rehearsal-" + secrets.token_hex(3)
    bid = behaviour_id or f"bh-{rid}"
    scratch: dict[str, Stroke] = dict(strokes)
    cache = _ScratchViews(views, strokes)
    installer_role: Role = "edit" if grant == "write" else "view"
    t = now_ms()
    state = dict(state or {})
    before = len(scratch)
    firings: list[dict[str, Any]] = []
    failures, halted = 0, None
    every = next((x.every for x in triggers if isinstance(x, Every)), 0.0)
    plan: list[tuple[FiredEvent, Role, MadeUpEvent | None]] = [(FiredEvent(type="install", t=t, by=installer.name, actor=installer), installer_role, None)]
    for i, e in enumerate(events, start=1):
        t += int(every * 1000) if e.type == "every" else EVENT_GAP_MS
        plan.append((_fired(e, t, f"{rid}.{i}", scratch=None), e.role, e))
    for k, (event, cause, made_up) in enumerate(plan):
        fid = f"{rid}.{k}"
        if halted is not None:
            firings.append({"event": _shown(event, cause), "ran": False, "why": halted})
            continue
        if made_up is not None:
            event = _fired(made_up, event.t, fid, scratch=scratch)  # its strokes land in the copy now, as a person's would
        fgrant, read_only = firing_grant(installer_role, cause, anyone=anyone) if made_up is not None else (grant, None)
        session = CanvasSession(dict(scratch), author=author, run_id=fid, grant=fgrant, quotas=bounds.quotas, behaviour=bid,
                                id_prefix=fid, clock_ms=event.t, views=cache, people=people)
        try:
            out = await run_firing(sandbox, code, event=event_global(event, scratch), state=state, session=session, behaviour_id=bid,
                                   name=name, seed=seed_of(fid), clock_ms=event.t, limits=bounds.limits, state_bytes=bounds.state_bytes,
                                   share=share)
        except OverBudget as e:
            halted = f"not run: the sandbox is busy ({e})"
            firings.append({"event": _shown(event, cause), "ran": False, "why": halted})
            continue
        firings.append(_result(event, cause, out, fgrant, read_only))
        if out.ok:
            for s in session.added:
                scratch[s.id] = s
            for gone in session.erased:
                scratch.pop(gone, None)
            state, failures = out.state or {}, 0
            if out.requests.stop:
                halted = f"not run: the behaviour stopped itself ({out.requests.stop})"
        else:
            failures += 1 if fgrant == "write" else 0
            if k == 0:
                halted = "not run: the install run failed, so it would not be installed"
            elif failures >= bounds.failures:
                halted = f"not run: after {failures} failures in a row the behaviour would pause"
    ran = [f for f in firings if f.get("ran", True)]
    return {
        "ok": len(ran) == len(firings) and all(f["ok"] for f in ran),
        "rehearsal": {"name": name, "on": describe_triggers(triggers), "events": len(events), "firings": len(ran)},
        "firings": firings,
        "state": _clip_json(state, 4 * CLIP_CHARS),
        "room": {"strokes_before": before, "strokes_after": len(scratch)},
        "next": NEXT,
    }


def _fired(made_up: MadeUpEvent, t: int, fid: str, *, scratch: dict[str, Stroke] | None) -> FiredEvent:
    """A made-up event as a firing record keeps one; with `scratch`, its strokes are added to it and its erasures made."""
    by = made_up.by or "someone"
    actor = Actor(name=by, role=made_up.role)
    event = FiredEvent(type=made_up.type, t=t, by=by, actor=actor)
    if isinstance(made_up, MadeUpStrokes):
        made = [Stroke(id=f"{fid}.s{j}", points=[v for p in s.points for v in (p[0], p[1], min(1.0, max(0.0, p[2] if len(p) == 3 else 0.5)))],
                       color=s.color, width=s.width, author=s.author or by, kind=s.kind, t=t) for j, s in enumerate(made_up.strokes, start=1)]
        event.strokes = [s.id for s in made]
        if scratch is not None:
            scratch.update((s.id, s) for s in made)
    elif isinstance(made_up, MadeUpErase):
        event.erased = list(made_up.erased)
        if scratch is not None:
            for gone in made_up.erased:
                scratch.pop(gone, None)
    elif isinstance(made_up, MadeUpMessage):
        line = made_up.message
        event.message = MessageView(author=line.author or by, kind=line.kind, text=line.text, t=t)
    return event


def _shown(event: FiredEvent, cause: Role) -> dict[str, Any]:
    """The event as the tool result shows it (ids of its strokes; the program saw their views)."""
    out: dict[str, Any] = {"type": event.type, "t": event.t, "by": event.by, "role": cause}
    if event.strokes:
        out["strokes"] = list(event.strokes)
    if event.erased:
        out["erased"] = list(event.erased)
    if event.message is not None:
        out["message"] = event.message.text
    return out


def _result(event: FiredEvent, cause: Role, out: Outcome, grant: Grant, read_only: str | None) -> dict[str, Any]:
    """One firing as the tool result shows it."""
    rec, session = out.record, out.session
    res: dict[str, Any] = {"event": _shown(event, cause), "ok": out.ok}
    if read_only:  # a viewer caused it: the firing could only read
        res["grant"], res["read_only"] = grant, read_only
    if rec.error is not None:
        res["error"] = where(rec.error)
    else:  # what it would have written (empty lists left out: the result is read by the model)
        drawn = [{"id": s.id, "bbox": _box(s)} for s in session.added]
        if drawn:
            res["drawn"] = drawn[:DRAWN_SHOWN]
        if len(drawn) > DRAWN_SHOWN:
            res["drawn_more"] = len(drawn) - DRAWN_SHOWN
        if session.erased:
            res["erased"] = list(session.erased[:DRAWN_SHOWN])
        if session.said:
            res["said"] = [m.text for m in session.said]
        if out.requests.stop:
            res["stopped"] = out.requests.stop
        if out.requests.ask:
            res["would_ask"] = out.requests.ask
        res["result"] = _clip_json(rec.result, CLIP_CHARS)
        res["state"] = _clip_json(out.state, CLIP_CHARS)
    if rec.console:
        res["console"] = _clip("\n".join(rec.console), CLIP_CHARS)
    res["calls"] = _counts(rec.calls)
    return res


def where(error: RunError) -> dict[str, Any]:
    """An error as the model reads it, with the line and column its stack points at in the program."""
    out: dict[str, Any] = {"kind": error.kind, "message": _clip(error.message, CLIP_CHARS)}
    m = _WHERE.search(error.stack or "")
    if m:
        out["line"], out["column"] = int(m.group(1)), int(m.group(2))
    return out


def _box(s: Stroke) -> dict[str, float]:
    b = bbox(s.points)
    return {"x0": b.x0, "y0": b.y0, "x1": b.x1, "y1": b.y1}


def _counts(calls: Sequence[Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for c in calls:
        counts[c.name] = counts.get(c.name, 0) + 1
    return counts


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[:n] + f"… [{len(text) - n} more chars]"


def _clip_json(value: Any, n: int) -> Any:
    text = json.dumps(value, default=str)
    return value if len(text) <= n else _clip(text, n)


class _ScratchViews(Views):
    """The room's own strokes' views from the room's cache (`views`); made-up strokes and what the
    rehearsal drew are encoded here only, so nothing of a rehearsal stays in the room's cache."""

    def __init__(self, room: Views | None, room_strokes: Mapping[str, Stroke]) -> None:
        super().__init__()
        self._room = room
        self._room_strokes = room_strokes

    def _theirs(self, stroke: Stroke) -> bool:
        return self._room_strokes.get(stroke.id) is stroke

    def entry(self, stroke: Stroke, keep: bool = True) -> tuple[str, BBox]:
        if self._room is not None and self._theirs(stroke):
            return self._room.entry(stroke, keep)
        return super().entry(stroke, keep)

    def box(self, stroke: Stroke, keep: bool = True) -> BBox:
        if self._room is not None and self._theirs(stroke):
            return self._room.box(stroke, keep)
        return super().box(stroke, keep)
