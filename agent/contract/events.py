"""What a behaviour is triggered by and what a firing sees, defined once: triggers, the event
a firing gets, the installer (whose grant it acts with), and the one rule that says with which
grant a firing acts (`firing_grant`: authority is the intersection along the causal chain).

Why here, in the model-facing contract: `execute`'s `on` is validated against these models,
and the JS globals (`agent/contract/behaviour.py`) declare them to the model.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from agent.contract.canvas import Grant, StrokeView
from canvas.schema import COORD_LIMIT, MAX_POINTS, MAX_TEXT
from common.actor import Actor, Role, weakest

EVERY_MIN_S = 5.0
EVENT_STROKES = 100
"""Strokes one event carries at most (the rest are counted in `dropped`; read them with canvas.strokes)."""

EventName = Literal["stroke", "erase", "message", "join", "leave", "press"]
EventType = Literal["install", "stroke", "erase", "message", "join", "leave", "press", "every"]
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
    usage = ('on must be a list of triggers: "stroke", "erase", "message", "join", "leave", "press" '
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
    """A chat line as a firing sees it (`author` is the display name the line carries)."""

    author: str = Field(description="the display name the line carries (its writer chose it); `event.actor` is who wrote it as the server knows")
    kind: Literal["human", "agent"]
    text: str
    t: int


class PressedWidget(BaseModel):
    """The button a press was on, as the firing sees it."""

    id: str
    type: Literal["text", "button"]
    text: str = Field(description="its label")
    x: float
    y: float


class EventView(BaseModel):
    """The `event` global: what made this firing happen."""

    type: EventType = Field(description='"install" (the run when it is installed), a trigger name, or "every"')
    t: int = Field(description="ms since the Unix epoch when it happened; Date.now() reads this for the whole firing")
    by: str | None = Field(default=None, description="who did it (a display name, as their page or client gave it), if anyone: `actor.name`")
    actor: Actor | None = Field(default=None, description=(
        "who did it as the server knows it (not as a peer wrote it): `id` (their link's id, null if not known), `name`, "
        "`kind` (human, agent, behaviour, mcp) and `role` (edit, or view: a viewer caused it, so this firing is read-only "
        "unless the behaviour was installed with anyone: true). None for schedules"))
    strokes: list[StrokeView] | None = Field(default=None, description="strokes added since the last firing (not by this behaviour), oldest first")
    erased: list[str] | None = Field(default=None, description="ids of strokes erased since the last firing")
    message: MessageView | None = Field(default=None, description="the latest chat line")
    widget: PressedWidget | None = Field(default=None, description="press: the button pressed (one of this behaviour's; the latest, "
                                         "when presses were merged); `by`/`actor` is who pressed it")
    count: int = Field(default=1, description="how many events were merged into this firing (they arrived while it was busy)")
    dropped: int = Field(default=0, description=f"strokes left out past {EVENT_STROKES} (read them with canvas.strokes)")


# ---- made-up events: a rehearsal (`execute` with `on` and `rehearse`) --------------------------

REHEARSAL_EVENTS = 20
"""Made-up events one rehearsal may carry (each is a firing: the run's time bound holds them too)."""


class MadeUpStroke(BaseModel):
    """A stroke of a made-up event, as a person would draw it (applied to the rehearsal's copy of the room)."""

    model_config = ConfigDict(extra="forbid")
    points: list[list[float]] = Field(min_length=1, max_length=MAX_POINTS, description="[[x, y], ...] or [[x, y, pressure], ...]")
    color: str = Field(default="#1e1e1e", pattern=r"^#[0-9a-fA-F]{6}$")
    width: float = Field(default=4.0, gt=0, le=200)
    author: str | None = Field(default=None, max_length=80, description="display name (default: the event's `by`)")
    kind: Literal["human", "agent"] = "human"

    @field_validator("points")
    @classmethod
    def _pairs(cls, points: list[list[float]]) -> list[list[float]]:
        for i, pt in enumerate(points):
            if len(pt) not in (2, 3):
                raise ValueError(f"point {i} must be [x, y] or [x, y, pressure]")
            if not (abs(pt[0]) <= COORD_LIMIT and abs(pt[1]) <= COORD_LIMIT):
                raise ValueError(f"point {i} lies outside ±{COORD_LIMIT:g} canvas units")
        return points


class _MadeUp(BaseModel):
    model_config = ConfigDict(extra="forbid")
    by: str | None = Field(default=None, max_length=80, description="who did it (a display name; default 'someone')")
    role: Role = Field(default="edit", description="their link's role: view makes the firing read-only, as a viewer's event would")


class MadeUpStrokes(_MadeUp):
    type: Literal["stroke"]
    strokes: list[MadeUpStroke] = Field(min_length=1, max_length=EVENT_STROKES)


class MadeUpErase(_MadeUp):
    type: Literal["erase"]
    erased: list[str] = Field(min_length=1, max_length=EVENT_STROKES, description="ids of strokes erased (from the room, or drawn earlier in the rehearsal)")


class MadeUpLine(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=MAX_TEXT)
    author: str | None = Field(default=None, max_length=80)
    kind: Literal["human", "agent"] = "human"


class MadeUpMessage(_MadeUp):
    type: Literal["message"]
    message: MadeUpLine


class MadeUpPresence(_MadeUp):
    type: Literal["join", "leave"]


class MadeUpTick(_MadeUp):
    type: Literal["every"]


MadeUpEvent = Annotated[MadeUpStrokes | MadeUpErase | MadeUpMessage | MadeUpPresence | MadeUpTick, Field(discriminator="type")]
_MADE_UP: TypeAdapter[MadeUpEvent] = TypeAdapter(MadeUpEvent)
REHEARSAL_USAGE = ('rehearse must be a list of made-up events: {type: "stroke", strokes: [{points, color?, width?, author?, kind?}], by?}, '
                   '{type: "erase", erased: [ids], by?}, {type: "message", message: {text, author?}, by?}, {type: "join"|"leave", by?}, '
                   '{type: "every"}; each may say role: "view" (a viewer caused it)')


def parse_rehearsal(value: Any, triggers: list[Trigger]) -> list[MadeUpEvent]:
    """`execute`'s `rehearse`, checked: at most `REHEARSAL_EVENTS` made-up events, each of a shape
    a real event has and of a type the triggers fire on; the error names the bad one."""
    if not isinstance(value, list) or not value:
        raise BadInstall(REHEARSAL_USAGE)
    if len(value) > REHEARSAL_EVENTS:
        raise BadInstall(f"rehearse holds at most {REHEARSAL_EVENTS} events (got {len(value)}); rehearse the cases that matter")
    fires_on = {t if isinstance(t, str) else "every" for t in triggers}
    out: list[MadeUpEvent] = []
    for i, item in enumerate(value):
        shown = json.dumps(item, default=str)[:160]
        try:
            event = _MADE_UP.validate_python(item)
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(x) for x in first["loc"][1:]) or "type"  # loc[0] is the type it was read as
            raise BadInstall(f"rehearse[{i}] {shown} is not a made-up event: {where}: {first['msg']}. {REHEARSAL_USAGE}") from None
        if event.type not in fires_on:
            raise BadInstall(f"rehearse[{i}] is a {event.type!r} event, but on ({describe_triggers(triggers)}) never fires on it")
        out.append(event)
    return out


class Installer(BaseModel):
    """Whose grant a behaviour acts with: the edit link that installed it (never the token itself)."""

    id: str = Field(description="the token id (revoking it pauses the behaviour)")
    label: str
    expires: int | None = Field(default=None, description="ms since the Unix epoch when the link expires")


# ---- with which grant a firing acts ------------------------------------------------------

ANYONE_DOC = ("anyone may trigger it with write: a firing caused by a viewer acts with the installer's grant "
              "(without it, such a firing is read-only)")


def firing_grant(installer: Role, cause: Role, *, anyone: bool = False) -> tuple[Grant, str | None]:
    """THE rule for every trigger (strokes, chat, presence, schedules, and any added later, such as
    buttons): a firing acts with the intersection of its installer's role and the role of whoever
    caused it, unless its installer accepted anyone's triggers (`anyone`). Returns the grant and,
    when it is read only, why (kept in the firing's record)."""
    role = installer if anyone else weakest(installer, cause)
    if role == "edit":
        return "write", None
    if installer != "edit":
        return "read", "its installer's link may only view"
    return "read", "a viewer caused it (install it with anyone: true to let anyone trigger it with write)"
