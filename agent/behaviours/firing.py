"""One firing of a behaviour: one sandbox run of its code with `event`, `state` and `behaviour`.

Why its own module: the scheduler decides WHEN a behaviour fires; this decides what one firing
is, the same way every time, so a firing can be replayed from its record. A firing is a fresh
VM with the canvas capabilities of the firing's grant (its installer's, or read when a viewer
caused it), writes buffered in a `CanvasSession` (committed by the caller, in one transaction,
only if the run succeeded), the clock frozen at the event's time, `Math.random` seeded from
the firing id, and stroke ids derived from the firing id. Everything else it could depend on is in the record: code version, event, state
before. `replay` runs a record again against the room's strokes as they were.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from agent.behaviours.model import FiredEvent, Firing
from agent.contract.behaviour import ASK_CAP, STOP_CAP, AskParams, StopParams
from agent.contract.canvas import CanvasSession, Quotas, view
from agent.sandbox import UNKEYED, Binding, CapabilityError, Limits, RunError, RunRecord, Sandbox, Share
from canvas import Stroke, Widget


@dataclass
class Requests:
    """What a firing asked of its behaviour (applied only if the firing succeeds)."""

    stop: str | None = None
    ask: str | None = None

    def on_stop(self, params: StopParams) -> None:
        self.stop = (params.reason or "").strip()[:200] or "stopped itself"

    def on_ask(self, params: AskParams) -> None:
        if self.ask is not None:
            raise CapabilityError("behaviour.ask: at most once per firing")
        text = params.text.strip()
        if not text:
            raise CapabilityError("behaviour.ask: text is empty")
        self.ask = text[:2000]


@dataclass
class Outcome:
    """A firing's result: the record, the buffered writes, and (if it succeeded) the new state."""

    record: RunRecord
    session: CanvasSession
    requests: Requests
    state: dict[str, Any] | None

    @property
    def ok(self) -> bool:
        return self.record.ok


def seed_of(firing_id: str) -> int:
    return zlib.crc32(firing_id.encode())


def event_global(event: FiredEvent, strokes: Mapping[str, Stroke]) -> dict[str, Any]:
    """The `event` the program sees (`EventView`): the record's event with views of its strokes."""
    out: dict[str, Any] = {"type": event.type, "t": event.t, "by": event.by, "count": event.count}
    if event.actor is not None:
        out["actor"] = event.actor.model_dump()
    if event.strokes:
        out["strokes"] = [view(strokes[i]) for i in event.strokes if i in strokes]
    if event.erased:
        out["erased"] = list(event.erased)
    if event.message is not None:
        out["message"] = event.message.model_dump()
    if event.widget is not None:
        out["widget"] = event.widget.model_dump()
    if event.dropped:
        out["dropped"] = event.dropped
    return out


async def run_firing(sandbox: Sandbox, code: str, *, event: dict[str, Any], state: dict[str, Any], session: CanvasSession,
                     behaviour_id: str, name: str, seed: int | None, clock_ms: int, limits: Limits | None, state_bytes: int,
                     share: Share = UNKEYED) -> Outcome:
    """Run `code` once as a firing of behaviour `behaviour_id` (writes buffered in `session`), in
    `share`'s turn of the sandbox (a rehearsal takes its run's; raises `OverBudget` past its budget)."""
    requests = Requests()
    bindings: list[Binding] = [*session.bindings(), (STOP_CAP, requests.on_stop), (ASK_CAP, requests.on_ask)]
    globals_ = {"event": event, "state": state, "behaviour": {"id": behaviour_id, "name": name}}
    record = await sandbox.run(code, bindings=bindings, limits=limits, clock_ms=clock_ms, globals=globals_, collect=["state"], seed=seed,
                               share=share)
    new_state = None
    if record.ok:
        new_state, problem = _checked_state((record.collected or {}).get("state"), state_bytes)
        if problem is not None:
            record = record.model_copy(update={"ok": False, "result": None, "error": RunError(kind="output", message=problem)})
    return Outcome(record=record, session=session, requests=requests, state=new_state)


def _checked_state(value: Any, limit: int) -> tuple[dict[str, Any] | None, str | None]:
    if not isinstance(value, dict):
        return None, f"state must stay a JSON object (it became {type(value).__name__ if value is not None else 'null/undefined'}); nothing was written"
    size = len(json.dumps(value, separators=(",", ":")).encode())
    if size > limit:
        return None, f"state is {size} bytes; a behaviour keeps at most {limit} bytes of state (keep only what later firings need); nothing was written"
    return value, None


async def replay(sandbox: Sandbox, firing: Firing, code: str, strokes: dict[str, Stroke], *, name: str, author: str,
                 quotas: Quotas | None = None, limits: Limits | None = None, state_bytes: int = 1 << 20,
                 widgets: Iterable[Widget] = ()) -> Outcome:
    """Run a recorded firing again: `code` of its version, the room's `strokes` (and `widgets`) as
    they were when it fired (without its own writes). Its outcome's session holds the writes it would
    make; with the same inputs they are the recorded ones, to the stroke id."""
    missing = [i for i in firing.event.strokes if i not in strokes]
    if missing:
        raise ValueError(f"the room given lacks strokes the event carried: {missing[:5]}")
    session = CanvasSession(dict(strokes), author=author, run_id=firing.id, grant=firing.grant, quotas=quotas, behaviour=firing.behaviour,
                            id_prefix=firing.id, clock_ms=firing.clock_ms, widgets=widgets)
    return await run_firing(sandbox, code, event=event_global(firing.event, strokes), state=firing.state_before, session=session,
                            behaviour_id=firing.behaviour, name=name, seed=firing.seed, clock_ms=firing.clock_ms, limits=limits,
                            state_bytes=state_bytes)
