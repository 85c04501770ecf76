"""A model run's power over the room's behaviours: install (execute with `on`), list, remove.

Why a separate object per run: it is the capability. The peer makes one only for runs with the
write grant (a viewer's run gets none, so `on` and `behaviours.*` do not exist for it), and
only with a known installer (an edit link) may it install: a behaviour then acts with that
link's grant, and pauses when the link expires or is revoked. A chat line's sender is not
known (any editor's connection may have written it), so chat prompts may remove but not install.
`anyone` (execute's input) is the installer's explicit consent that a viewer's event may fire it
with write (`agent.contract.events.firing_grant`); the page shows it on the behaviour's card.

An install asked from elsewhere (an MCP client's `execute` with `on`: `agent.mcp`) is an
`InstallRequest` carried to wherever the room's behaviours are held (`agent.plugin`'s placement,
as a `BehaviourChange`) and carried out there by `install_requested`, through the same
`RunInstalls.install` as the built-in agent's, with the asking link as the installer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field

from agent.behaviours.firing import event_global, run_firing
from agent.behaviours.model import Behaviour, FiredEvent
from agent.behaviours.rehearsal import Bounds, rehearse
from agent.behaviours.scheduler import RoomBehaviours
from agent.contract.behaviour import LIST_CAP, NO_INSTALLER, REMOVE_CAP, BehaviourInfo, RemoveParams
from agent.contract.canvas import CanvasSession, NoParams
from agent.contract.codemode import compact_record
from agent.contract.events import BadInstall, Installer, MadeUpEvent, Trigger, describe_triggers, parse_rehearsal
from agent.sandbox import Binding, CallRecord, RunError, RunRecord, RunStats, Share
from canvas import new_id, now_ms
from common.actor import Actor


class InstallRequest(BaseModel):
    """An install asked by a client of another kind than the room's own agent run (an MCP client's
    `execute` with `on`): what to install, and on whose authority (the asking edit link)."""

    code: str
    on: list[Trigger]
    name: str
    installer: Installer
    run_id: str = Field(description="the asking client's run: the install run's writes carry it (its card, Undo run)")
    anyone: bool = False
    rehearse: list[dict[str, Any]] | None = Field(default=None, description="made-up events to rehearse instead of installing")


class InstallAnswer(BaseModel):
    """What an `InstallRequest` answers: the compact record its client is handed, and the install run's calls."""

    compact: dict[str, Any]
    calls: list[CallRecord] = Field(default_factory=list)


async def install_requested(rb: RoomBehaviours | None, request: InstallRequest) -> InstallAnswer:
    """Carry out `request` in the room whose behaviours `rb` holds (this node holds them)."""
    if rb is None:
        return InstallAnswer(compact=_refused("this server does not host behaviours")[0])
    if request.rehearse is not None:  # made-up events against a copy of the room: nothing installed or written
        try:
            events = parse_rehearsal(request.rehearse, request.on)
        except BadInstall as e:
            return InstallAnswer(compact=_refused(str(e))[0])
        share = Share(rb.room, request.installer.id)  # the asking link's turn of the sandbox, as its executes take
        return InstallAnswer(compact=await RunInstalls(rb, request.installer).rehearse(request.code, request.on, request.name, events,
                                                                                       share=share, anyone=request.anyone))
    compact, record = await RunInstalls(rb, request.installer).install(request.code, request.on, request.name, run_id=request.run_id,
                                                                      anyone=request.anyone)
    return InstallAnswer(compact=compact, calls=record.calls)


class RunInstalls:
    """`agent.behaviours.model.Installs` for one run in one room."""

    def __init__(self, rb: RoomBehaviours, installer: Installer | None) -> None:
        self.rb = rb
        self.installer = installer

    @property
    def can_install(self) -> bool:
        return self.installer is not None

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
                                clock_ms=t, views=rb.mirror.views, people=rb.people, widgets=rb.client.doc.widgets())
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

    async def rehearse(self, code: str, on: list[Trigger], name: str, events: list[MadeUpEvent], *, share: Share,
                       anyone: bool = False) -> dict[str, Any]:
        """The behaviour rehearsed on `events` against a copy of the room (`agent.behaviours.rehearsal`):
        the install's rules (an edit link, the code's size), nothing written or installed."""
        rb, limits = self.rb, self.rb.limits
        if self.installer is None:
            return _refused(NO_INSTALLER)[0]
        if len(code) > limits.code_chars:
            return _refused(f"a behaviour's program may be at most {limits.code_chars} characters")[0]
        existing = next((b for b in rb.behaviours() if b.name == name), None)
        installer = Actor(id=self.installer.id, name=self.installer.label, role="edit")
        bounds = Bounds(limits=rb.h.run_limits, quotas=rb.h.quotas, state_bytes=limits.state_bytes, failures=limits.failures)
        return await rehearse(rb.h.sandbox, code, name=name, triggers=on, events=events, strokes=rb.mirror.snapshot(), author=rb.author,
                              installer=installer, grant="write", bounds=bounds, share=share, anyone=anyone,
                              state=existing.state if existing else None, behaviour_id=existing.id if existing else None,
                              people=rb.people, views=rb.mirror.views)

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
