"""Behaviours, defined once: triggers, the records of a behaviour and of a firing, and the JS a
firing sees (`event`, `state`, `behaviour`, and `behaviours` for the model's own runs).

Why one module: the TypeScript declarations and docs the model searches, the validation of
what it sends (`execute`'s `on`), the HTTP payloads (and so the browser's types) and what is
stored all come from the models and capabilities below, so they cannot drift apart. What runs
a firing lives in `agent/firing.py`, what schedules firings in `agent/scheduler.py`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from agent.canvas_api import NoParams, StrokeView
from agent.sandbox import Binding, CallRecord, Capability, RunError, RunRecord, declarations
from agent.sandbox.capability import ts_type
from canvas import new_id

EVERY_MIN_S = 5.0
EVENT_STROKES = 100
"""Strokes one event carries at most (the rest are counted in `dropped`; read them with canvas.strokes)."""

EventName = Literal["stroke", "erase", "message", "join", "leave"]
EventType = Literal["install", "stroke", "erase", "message", "join", "leave", "every"]
Status = Literal["active", "paused", "stopped", "failed"]
"""active: it fires. paused: by a person, by the loop guard, or because its installer's link
expired or was revoked (`reason` says which). stopped: it called `behaviour.stop()`.
failed: it failed `behaviour_failures` times in a row. Paused and failed ones can be resumed."""


class Every(BaseModel):
    """A schedule: fire every `every` seconds, whether or not anyone is in the room."""

    model_config = ConfigDict(extra="forbid")
    every: float = Field(ge=EVERY_MIN_S, le=7 * 86400, description=f"seconds between firings, at least {EVERY_MIN_S:g}")


Trigger = EventName | Every
_TRIGGERS: TypeAdapter[list[Trigger]] = TypeAdapter(list[Trigger])
NAME_RE = re.compile(r"^[\w .:-]{1,40}$")


class BadInstall(ValueError):
    """`on` or `name` that cannot be used; the message says how to fix it."""


def parse_triggers(value: Any) -> list[Trigger]:
    """`execute`'s `on`, checked: a non-empty list of distinct triggers, at most one schedule."""
    usage = ('on must be a list of triggers: "stroke", "erase", "message", "join", "leave" '
             f'or {{"every": seconds}} (at least {EVERY_MIN_S:g})')
    try:
        triggers = _TRIGGERS.validate_python(value)
    except ValidationError as e:
        errors = e.errors()  # for an item both branches of the union complain: say the one that fits its shape
        def item(loc: tuple[Any, ...]) -> Any:
            return value[loc[0]] if loc and isinstance(loc[0], int) and isinstance(value, list) else None

        fits = [x for x in errors if ("Every" in map(str, x["loc"])) == isinstance(item(x["loc"]), dict)]
        why = (fits or errors)[0]["msg"]
        raise BadInstall(f"{usage}; got {json.dumps(value, default=str)[:200]} ({why})") from None
    if not triggers:
        raise BadInstall(usage)
    names = [t if isinstance(t, str) else "every" for t in triggers]
    if len(set(names)) != len(names):
        raise BadInstall(f"{usage}; each trigger at most once")
    return triggers


def parse_name(value: Any, triggers: list[Trigger]) -> str:
    """`execute`'s `name` (default: from the triggers), 1-40 word characters, spaces, . : -"""
    if value is None:
        return "on " + ", ".join(t if isinstance(t, str) else f"every {t.every:g}s" for t in triggers)
    if not isinstance(value, str) or not NAME_RE.match(value.strip()):
        raise BadInstall("name must be 1-40 letters, digits, spaces or . : - _ (it names the behaviour; the same name replaces it)")
    return value.strip()


def describe_triggers(triggers: list[Trigger]) -> str:
    return ", ".join(t if isinstance(t, str) else f"every {t.every:g} s" for t in triggers)


def every_of(triggers: list[Trigger]) -> float | None:
    return next((t.every for t in triggers if isinstance(t, Every)), None)


# ---- what a firing sees ---------------------------------------------------------------


class MessageView(BaseModel):
    author: str
    kind: Literal["human", "agent"]
    text: str
    t: int


class EventView(BaseModel):
    """The `event` global: what made this firing happen."""

    type: EventType = Field(description='"install" (the run when it is installed), a trigger name, or "every"')
    t: int = Field(description="ms since the Unix epoch when it happened; Date.now() reads this for the whole firing")
    by: str | None = Field(default=None, description="who did it (a display name), if anyone")
    strokes: list[StrokeView] | None = Field(default=None, description="strokes added since the last firing (not by this behaviour), oldest first")
    erased: list[str] | None = Field(default=None, description="ids of strokes erased since the last firing")
    message: MessageView | None = Field(default=None, description="the latest chat line")
    count: int = Field(default=1, description="how many events were merged into this firing (they arrived while it was busy)")
    dropped: int = Field(default=0, description=f"strokes left out past {EVENT_STROKES} (read them with canvas.strokes)")


class FiredEvent(BaseModel):
    """An event as a firing record keeps it: stroke ids instead of stroke views."""

    type: EventType
    t: int
    by: str | None = None
    strokes: list[str] = Field(default_factory=list)
    erased: list[str] = Field(default_factory=list)
    message: MessageView | None = None
    count: int = 1
    dropped: int = 0


class Installer(BaseModel):
    """Whose grant a behaviour acts with: the edit link that installed it (never the token itself)."""

    id: str = Field(description="the token id (revoking it pauses the behaviour)")
    label: str
    expires: int | None = Field(default=None, description="ms since the Unix epoch when the link expires")


class FiringSummary(BaseModel):
    """One firing, in a line: when, why, whether it worked, what it wrote."""

    id: str
    type: EventType
    t: int
    ok: bool
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
    ok: bool
    error: RunError | None = None
    result: Any = None
    console: list[str] = Field(default_factory=list)
    calls: list[CallRecord] = Field(default_factory=list)
    writes: Writes = Field(default_factory=Writes)
    stopped: str | None = Field(default=None, description="the reason it gave to behaviour.stop()")
    asked: str | None = Field(default=None, description="what it asked the model with behaviour.ask()")
    ms: float = Field(default=0.0, description="wall time of the sandbox run")
    started: int = Field(default=0, description="ms since the Unix epoch when it started (its clock reads `clock_ms`, the event's time)")
    undone: bool = False

    def summary(self) -> FiringSummary:
        err = self.error.message if self.error else None
        return FiringSummary(id=self.id, type=self.event.type, t=self.event.t, ok=self.ok, error=err, drawn=len(self.writes.drawn),
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
    run: str | None
    firings: int
    failures: int
    last: FiringSummary | None
    created: int
    updated: int


# ---- the globals and capabilities a firing gets (declarations and docs come from here) -----


@dataclass(frozen=True)
class Global:
    """A JS global holding data (the capability functions are `Capability` objects)."""

    name: str
    type: Any
    doc: str
    mutable: bool = False
    namespace: bool = False
    """Declared as a namespace of constants (its functions are capabilities in the same namespace)."""

    def declaration(self) -> str:
        schema = TypeAdapter(self.type).json_schema()
        defs = schema.get("$defs", {})
        doc = "\n".join(f" * {ln}".rstrip() for ln in self.doc.strip().splitlines())
        if not self.namespace:
            return f"/**\n{doc}\n */\ndeclare {'let' if self.mutable else 'const'} {self.name}: {ts_type(schema, defs)};\n"
        props = [f"  /** {p.get('description', '')} */\n  const {k}: {ts_type(p, defs)};" for k, p in schema.get("properties", {}).items()]
        return f"/**\n{doc}\n */\ndeclare namespace {self.name} {{\n" + "\n".join(props) + "\n}\n"

    def markdown(self) -> str:
        return f"### `{self.name}`\n\n{self.doc.strip()}\n\n```ts\n{self.declaration()}```\n"


class BehaviourIdentity(BaseModel):
    id: str = Field(description="this behaviour's id")
    name: str = Field(description="its name (installing again with this name replaces it)")


class StopParams(BaseModel):
    reason: str | None = Field(default=None, description="shown in the behaviour's card")


class AskParams(BaseModel):
    text: str = Field(description="what to ask the model, e.g. what is unclear")


class RemoveParams(BaseModel):
    id: str = Field(description="the behaviour's id or name")


class BehaviourInfo(BaseModel):
    id: str
    name: str
    on: list[Trigger]
    status: Status
    firings: int


EVENT = Global("event", EventView,
               "What made this firing happen. Strokes and chat lines this behaviour wrote itself never fire it. "
               "Events that arrive while it runs are merged into the next firing.")
STATE = Global("state", dict[str, Any],
               "This behaviour's memory: a JSON object that persists between firings (and restarts). Mutate it "
               "(or assign a new object); it is saved when the firing succeeds. Starts as {} (a replacement keeps it).",
               mutable=True)
IDENTITY = Global("behaviour", BehaviourIdentity, "This behaviour: its `id` and `name` (and the functions below).", namespace=True)
STOP_CAP = Capability(name="behaviour.stop", params=StopParams, returns=None,
                      doc="Stop this behaviour after this firing (its writes still land): it fires no more.",
                      example="if (winner) { canvas.say(`${winner} wins!`); behaviour.stop('game over'); }")
ASK_CAP = Capability(name="behaviour.ask", params=AskParams, returns=None,
                     doc="Wake the model with this question, the behaviour's code, state and recent firings, so it "
                         "can judge what the code cannot (and replace or remove the behaviour). Rate-limited; use rarely.",
                     example="behaviour.ask('Someone drew a shape I do not recognise; should I treat it as a move?');")
LIST_CAP = Capability(name="behaviours.list", params=NoParams, returns=list[BehaviourInfo],
                      doc="The room's behaviours (read-only view).", example="behaviours.list().filter(b => b.status === 'active')")
REMOVE_CAP = Capability(name="behaviours.remove", params=RemoveParams, returns=bool,
                        doc="Remove a behaviour (by id or name) when this program succeeds; true if it exists.",
                        example="behaviours.remove('echo')")

FIRING_GLOBALS = (EVENT, STATE, IDENTITY)
FIRING_CAPS = (STOP_CAP, ASK_CAP)
MANAGE_CAPS = (LIST_CAP, REMOVE_CAP)

EXECUTE_PROPS: dict[str, Any] = {
    "on": {"type": "array", "items": {"anyOf": [{"type": "string", "enum": ["stroke", "erase", "message", "join", "leave"]},
                                                 {"type": "object", "properties": {"every": {"type": "number", "minimum": EVERY_MIN_S}},
                                                  "required": ["every"]}]},
           "description": "install the program as a behaviour of the room: it runs now (event.type 'install') and then on "
                          "each of these triggers, without you (search 'behaviour')"},
    "name": {"type": "string", "description": "the behaviour's name; executing again with the same name replaces it"},
}
"""`execute`'s extra inputs, offered only to runs that may install behaviours."""

GUIDE = """\
A behaviour is a program that keeps running in the room after your turn: the server runs it on \
every matching event, with no model call, for as long as it is active. Install one with \
execute({code, on, name}): `on` lists triggers ("stroke": strokes added by anyone but this \
behaviour; "erase"; "message": chat lines; "join"/"leave": people arriving/leaving; \
{"every": seconds}, at least 5). The program runs once at once with event.type "install" (so you \
see it work on the room as it is) and, if that succeeds, it is installed; the result says its id.
In every firing the program sees `event`, `state` (JSON that persists: keep game state there), \
`canvas` (with your grant) and `behaviour` (id, name, stop(reason), ask(text)). Each firing is \
one transaction: if it throws nothing is written; after 3 failures in a row it pauses. Time is \
the event's time (Date.now() is frozen) and Math.random is seeded per firing. A behaviour never \
fires on its own strokes; behaviours that keep triggering each other are paused.
Replace a behaviour: execute again with the same `name` (new code and triggers; its state and \
id stay). Remove one: behaviours.remove(idOrName) in a program. People can pause, resume and \
remove behaviours in the chat panel.
```js
// on: ["stroke"], name: "echo"
for (const s of event.strokes ?? []) {
  const b = s.bbox; canvas.draw({points: [[b.x0, b.y1 + 10], [b.x1, b.y1 + 10]], color: '#d12d2d'});
}
state.seen = (state.seen ?? 0) + (event.strokes?.length ?? 0);
```
"""


def behaviour_declarations() -> str:
    """TypeScript for the firing globals and the behaviour functions."""
    return "".join(g.declaration() for g in FIRING_GLOBALS) + declarations(FIRING_CAPS + MANAGE_CAPS)


# ---- what the model loop is handed when its run may install behaviours ----------------------

NO_INSTALLER = ("this prompt came from a chat line, and the agent cannot tell whose link wrote it, so it cannot install "
                "behaviours (they act with their installer's grant); ask from the page's chat box or POST /prompts with an edit link")


class Installs(Protocol):
    """A run's install capability (`agent/scheduler.py` makes them; only for edit grants with a
    known installer, so a viewer's run never holds one)."""

    @property
    def can_install(self) -> bool:
        """Whether `install` may be used (else only `manage`)."""
        ...

    def context(self) -> str:
        """The room's behaviours in a few lines, for the model's prompt."""
        ...

    async def install(self, code: str, on: list[Trigger], name: str, *, run_id: str) -> tuple[dict[str, Any], RunRecord]:
        """Run `code` once as an install firing; if it succeeds, install (or replace) it."""
        ...

    def manage(self) -> tuple[list[Binding], Callable[[], list[str]]]:
        """`behaviours.*` bindings for one execute, and a callable applying its removals
        (returns the removed ids) once the program has succeeded."""
        ...


class BehaviourLimits(BaseModel):
    """What one room's behaviours may cost (the composition root fills them from Settings)."""

    per_room: int = Field(default=8, ge=1, description="behaviours a room may have")
    firings_per_minute: int = Field(default=60, ge=1, description="firings of one behaviour per minute (more events wait, merged)")
    failures: int = Field(default=3, ge=1, description="failed firings in a row before a behaviour pauses itself")
    state_bytes: int = Field(default=16 * 1024, ge=256, description="size of one behaviour's state (JSON)")
    firings_kept: int = Field(default=50, ge=1, description="firing records kept per behaviour")
    chain: int = Field(default=8, ge=1, description="firings in a row caused by behaviours' writes before the loop guard pauses one")
    code_chars: int = Field(default=64_000, ge=100, description="size of a behaviour's program")
    asks_per_minute: int = Field(default=2, ge=1, description="behaviour.ask() model calls per behaviour per minute")


# ---- HTTP payloads (`agent/behaviour_routes.py`) ----------------------------------------------


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
