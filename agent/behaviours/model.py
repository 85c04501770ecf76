"""Behaviours, defined once: triggers, the records of a behaviour and of a firing, the event a
firing sees, and the HTTP payloads (the bounds are `settings`).

Why one module: the validation of what the model sends (`execute`'s `on`), what is stored, what
the routes answer (and so the browser's types) all come from the models below, so they cannot
drift apart. The JS globals and functions a firing gets are `agent/contract/behaviour.py`; what runs
a firing is `agent/behaviours/firing.py`, what schedules firings `agent/behaviours/scheduler.py`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from agent.contract.canvas import Grant
from agent.contract.events import ANYONE_DOC, EventType, Installer, MessageView, PressedWidget, Status, Trigger
from agent.sandbox import CallRecord, RunError
from canvas import new_id
from common.actor import Actor


class FiredEvent(BaseModel):
    """An event as a firing record keeps it: stroke ids instead of stroke views."""

    type: EventType
    t: int
    by: str | None = None
    actor: Actor | None = Field(default=None, description="who caused it, as the server knows them (the latest, when events were merged)")
    strokes: list[str] = Field(default_factory=list)
    erased: list[str] = Field(default_factory=list)
    message: MessageView | None = None
    widget: PressedWidget | None = Field(default=None, description="press: the button pressed")
    count: int = 1
    dropped: int = 0


class FiringSummary(BaseModel):
    """One firing, in a line: when, why, whether it worked, what it wrote."""

    id: str
    type: EventType
    t: int
    ok: bool
    grant: Grant = "write"
    error: str | None = None
    drawn: int = 0
    erased: int = 0
    said: int = 0
    ms: float = 0.0
    undone: bool = False


class Writes(BaseModel):
    drawn: list[str] = Field(default_factory=list, description="ids of strokes it drew (undo erases these)")
    erased: list[str] = Field(default_factory=list)
    said: list[str] = Field(default_factory=list)
    placed: list[str] = Field(default_factory=list, description="ids of texts and buttons it placed (undo removes these)")
    removed: list[str] = Field(default_factory=list, description="ids of texts and buttons it erased")


class Firing(BaseModel):
    """A firing's run record: with the behaviour's code of `version`, the room's strokes and
    these inputs (event, state before, seed, clock), it replays to the same writes."""

    kind: Literal["behaviour"] = "behaviour"
    id: str
    behaviour: str
    room: str
    version: int
    event: FiredEvent
    state_before: dict[str, Any]
    seed: int
    clock_ms: int
    depth: int = Field(default=0, description="firings of behaviours in a row since a person (or a schedule) acted")
    grant: Grant = Field(default="write", description="what it could do to the room: write, or read (canvas.draw/erase/say unavailable)")
    read_only: str | None = Field(default=None, description="why its grant was read, if it was (e.g. a viewer caused it)")
    ok: bool
    error: RunError | None = None
    result: Any = None
    console: list[str] = Field(default_factory=list)
    calls: list[CallRecord] = Field(default_factory=list, description="a sample of its capability calls: the first and the last "
                                    "(`agent.contract.callsample`), each cut to a preview")
    call_counts: dict[str, int] = Field(default_factory=dict, description="every capability call it made, counted by name")
    calls_dropped: int = Field(default=0, description="calls left out of `calls` (counted in `call_counts`)")
    writes: Writes = Field(default_factory=Writes)
    stopped: str | None = Field(default=None, description="the reason it gave to behaviour.stop()")
    asked: str | None = Field(default=None, description="what it asked the model with behaviour.ask()")
    ms: float = Field(default=0.0, description="wall time of the sandbox run")
    cpu_ms: float = Field(default=0.0, description="CPU time of the sandbox run: what the behaviour's and its link's CPU budgets were charged")
    started: int = Field(default=0, description="ms since the Unix epoch when it started (its clock reads `clock_ms`, the event's time)")
    undone: bool = False

    def summary(self) -> FiringSummary:
        err = self.error.message if self.error else None
        return FiringSummary(id=self.id, type=self.event.type, t=self.event.t, ok=self.ok, grant=self.grant, error=err, drawn=len(self.writes.drawn),
                             erased=len(self.writes.erased), said=len(self.writes.said), ms=self.ms, undone=self.undone)


class Behaviour(BaseModel):
    """A behaviour of a room, as stored (its code included)."""

    id: str = Field(default_factory=lambda: new_id("bh-"))
    room: str
    name: str
    on: list[Trigger]
    code: str
    version: int = 1
    status: Status = "active"
    reason: str | None = Field(default=None, description="why it is not active")
    state: dict[str, Any] = Field(default_factory=dict)
    installer: Installer
    anyone: bool = Field(default=False, description=ANYONE_DOC)
    run: str | None = Field(default=None, description="the agent run that installed (or last replaced) it")
    firings: int = 0
    failures: int = Field(default=0, description="consecutive failed firings")
    last: FiringSummary | None = None
    created: int = 0
    updated: int = 0

    def summary(self) -> BehaviourSummary:
        return BehaviourSummary.model_validate({**self.model_dump(exclude={"code", "installer"}), "installer": self.installer.label})


class BehaviourSummary(BaseModel):
    """One entry of `GET /rooms/{name}/behaviours`."""

    id: str
    room: str
    name: str
    on: list[Trigger]
    version: int
    status: Status
    reason: str | None
    state: dict[str, Any]
    installer: str = Field(description="who installed it (the link's label)")
    anyone: bool = Field(default=False, description=ANYONE_DOC)
    run: str | None
    firings: int
    failures: int
    last: FiringSummary | None
    created: int
    updated: int


# ---- HTTP payloads (`agent/behaviours/routes.py`) ----------------------------------------------


class BehaviourList(BaseModel):
    """`GET /rooms/{name}/behaviours`, oldest first."""

    behaviours: list[BehaviourSummary]


class BehaviourDetail(BaseModel):
    """`GET /rooms/{name}/behaviours/{id}`: the behaviour, its code and its recent firings (newest first)."""

    behaviour: BehaviourSummary
    code: str
    firings: list[Firing]


class BehaviourRemoved(BaseModel):
    """`DELETE /rooms/{name}/behaviours/{id}`."""

    id: str
    removed: bool
