"""What a behaviour is triggered by and what a firing sees, defined once: triggers, the event
a firing gets, the installer (whose grant it acts with), and the one rule that says with which
grant a firing acts (`firing_grant`: authority is the intersection along the causal chain).

Why here, in the model-facing contract: `execute`'s `on` is validated against these models,
and the JS globals (`agent/contract/behaviour.py`) declare them to the model.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from agent.contract.canvas import Grant, StrokeView
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

    author: str
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
    by: str | None = Field(default=None, description="who did it (a display name), if anyone: `actor.name`")
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
