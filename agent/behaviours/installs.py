"""A model run's power over the room's behaviours: install (execute with `on`), list, remove.

Why a separate object per run: it is the capability. The peer makes one only for runs with the
write grant (a viewer's run gets none, so `on` and `behaviours.*` do not exist for it), and
only with a known installer (an edit link) may it install: a behaviour then acts with that
link's grant, and pauses when the link expires or is revoked. A chat line's sender is not
known (any editor's connection may have written it), so chat prompts may remove but not install.
`anyone` (execute's input) is the installer's explicit consent that a viewer's event may fire it
with write (`agent.contract.events.firing_grant`); the page shows it on the behaviour's card.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agent.behaviours.firing import event_global, run_firing
from agent.behaviours.model import Behaviour, FiredEvent
from agent.behaviours.scheduler import RoomBehaviours
from agent.contract.behaviour import LIST_CAP, NO_INSTALLER, REMOVE_CAP, BehaviourInfo, RemoveParams
from agent.contract.canvas import CanvasSession, NoParams
from agent.contract.codemode import compact_record
from agent.contract.events import Installer, Trigger, describe_triggers
from agent.sandbox import Binding, RunError, RunRecord, RunStats
from canvas import new_id, now_ms
from common.actor import Actor


class RunInstalls:
    """`agent.behaviours.model.Installs` for one run in one room."""

    def __init__(self, rb: RoomBehaviours, installer: Installer | None) -> None:
        self.rb = rb
        self.installer = installer

    @property
    def can_install(self) -> bool:
        return self.installer is not None

    def context(self) -> str:
        lines = [f"- “{b.name}” (id {b.id}, on {describe_triggers(b.on)}, {b.status}{': ' + b.reason if b.reason else ''}, "
                 f"{b.firings} firings, version {b.version})" for b in self.rb.behaviours()]
        return "Behaviours in this room:\n" + "\n".join(lines) if lines else ""

    async def install(self, code: str, on: list[Trigger], name: str, *, run_id: str, anyone: bool = False) -> tuple[dict[str, Any], RunRecord]:
        rb, limits = self.rb, self.rb.limits
        if self.installer is None:
            return _refused(NO_INSTALLER)
        existing = next((b for b in rb.behaviours() if b.name == name), None)
        if existing is None and len(rb.behaviours()) >= limits.per_room:
            return _refused(f"this room has {limits.per_room} behaviours, the most it may have: remove one first (behaviours.remove)")
        if len(code) > limits.code_chars:
            return _refused(f"a behaviour's program may be at most {limits.code_chars} characters")
        bid = existing.id if existing else new_id("bh-")
        t = now_ms()
        strokes = rb.mirror.snapshot()
        session = CanvasSession(strokes, author=rb.author, run_id=run_id, grant="write", quotas=rb.h.quotas, behaviour=bid,
                                clock_ms=t, views=rb.mirror.views, widgets=rb.client.doc.widgets())
        installer = Actor(id=self.installer.id, name=self.installer.label, role="edit")
        event = event_global(FiredEvent(type="install", t=t, by=installer.name, actor=installer), strokes)
        out = await run_firing(rb.h.sandbox, code, event=event, state=existing.state if existing else {}, session=session, behaviour_id=bid,
                               name=name, seed=None, clock_ms=t, limits=rb.h.run_limits, state_bytes=limits.state_bytes)
        rb.h.cpu.charge(bid, rb.room, self.installer, out.record.stats.cpu_ms / 1e3)  # the install run costs its link too
        compact = compact_record(out.record, session, out.ok and session.dirty)
        if not out.ok:
            compact["behaviour"] = None
            compact["next"] = "Not installed, and nothing was written. " + compact["next"].removeprefix("Nothing was written to the room. ")
            return compact, out.record
        if session.dirty:
            rb.actors.note(run_id, 0, installer)  # the model acted for a person: what it drew starts a chain afresh
            session.commit(rb.client.doc)
        b = existing or Behaviour(id=bid, room=rb.room, name=name, on=on, code=code, installer=self.installer, created=t)
        if existing is not None:
            b.version += 1
        b.on, b.code, b.installer, b.run, b.state, b.anyone = on, code, self.installer, run_id, out.state or {}, anyone
        rb.h.store.save_code(b)
        rb.set_status(b, "stopped" if out.requests.stop else "active", out.requests.stop)
        what = "Replaced" if existing else "Installed"
        compact["behaviour"] = {"id": b.id, "name": b.name, "on": [t if isinstance(t, str) else t.model_dump() for t in on],
                                "status": b.status, "version": b.version, "anyone": b.anyone}
        compact["next"] = (f"{what}: “{b.name}” now runs on {describe_triggers(on)} by itself, with no model call. Reply to the user "
                           "(say how to stop it: ask you, or the panel). Execute with the same name to replace it.")
        return compact, out.record

    def manage(self) -> tuple[list[Binding], Callable[[], list[str]]]:
        rb = self.rb
        doomed: list[Behaviour] = []

        def list_(params: NoParams) -> list[dict[str, Any]]:
            return [BehaviourInfo(id=b.id, name=b.name, on=b.on, status=b.status, firings=b.firings).model_dump() for b in rb.behaviours()]

        def remove(params: RemoveParams) -> bool:
            b = rb.h.store.find(rb.room, params.id)
            if b is not None and b not in doomed:
                doomed.append(b)
            return b is not None

        def apply() -> list[str]:
            for b in doomed:
                rb.remove(b)
            return [b.id for b in doomed]

        return [(LIST_CAP, list_), (REMOVE_CAP, remove)], apply


def _refused(why: str) -> tuple[dict[str, Any], RunRecord]:
    record = RunRecord(ok=False, error=RunError(kind="capability", message=why),
                       stats=RunStats(wall_ms=0, start_ms=0, memory_peak_bytes=0, calls=0, console_bytes=0))
    return {"ok": False, "error": {"kind": "capability", "message": why}, "behaviour": None,
            "next": "Not installed: nothing was run or written."}, record
