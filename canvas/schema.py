"""The room document's schema: the one definition browsers, agents and Yjs peers agree on.

SCHEMA.md beside this file is the prose version for people and other languages; its field
tables, like the browser's TypeScript types, are generated from these models
(`python -m inhabit.typegen`), so the field descriptions below are the documentation. Everything that reads or writes the document goes through these
models, so a malformed stroke from any peer is caught at the edge instead of deep inside
rendering or an agent's run.
"""

from __future__ import annotations

import math
import re
import time
import uuid
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

STROKES = "strokes"
"""Root `Y.Map`: stroke id -> stroke object (plain JSON, written once)."""

MESSAGES = "messages"
"""Root `Y.Array`: chat entries, oldest first."""

WIDGETS = "widgets"
"""Root `Y.Map`: widget id -> widget object (plain JSON): text and buttons placed in the room."""

MAX_POINTS = 10_000
"""Points in one stroke. Long pen strokes are split by the client well before this."""

MAX_TEXT = 8_000
"""Characters in one chat message."""

MAX_WIDGET_TEXT = 2_000
"""Characters in one text widget (a button's label: MAX_LABEL)."""

MAX_LABEL = 80
"""Characters in one button's label."""

MAX_WIDGETS = 500
"""Widgets in one room: a peer's write past it is refused like any malformed entry."""

COORD_LIMIT = 1_000_000.0
"""The canvas spans -COORD_LIMIT..COORD_LIMIT on both axes. Bounded so that no stroke can make
a spatial index or a renderer walk an unbounded range (a point at 1e300 froze browsers)."""

Kind = Literal["human", "agent"]
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,80}$")


def now_ms() -> int:
    return int(time.time() * 1000)


def new_id(prefix: str = "") -> str:
    return prefix + uuid.uuid4().hex[:16]


def _item_id(v: str) -> str:
    if not _ID.match(v):
        raise ValueError("an id must be 1-80 chars of [A-Za-z0-9_.:-]")
    return v


def _behaviour_id(v: str | None) -> str | None:
    if v is not None and not _ID.fullmatch(v):
        raise ValueError("a behaviour id is 1-80 chars of [A-Za-z0-9_.:-]")
    return v


def _color(v: str) -> str:
    if not _COLOR.match(v):
        raise ValueError("color must look like #rrggbb")
    return v.lower()


ItemId = Annotated[str, AfterValidator(_item_id)]
"""A stroke's or a widget's id: its key in the room's map."""
BehaviourId = Annotated[str | None, AfterValidator(_behaviour_id)]
"""The behaviour that wrote an entry (strokes, widgets, chat lines)."""
Color = Annotated[str, AfterValidator(_color)]
"""#rrggbb, kept lower-case."""


class Stroke(BaseModel):
    """One pen stroke: a polyline of (x, y, pressure) triplets in canvas units."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: ItemId = Field(description="same as its key in `strokes`: 1-80 chars of [A-Za-z0-9_.:-]")
    points: list[float] = Field(description="flat [x0, y0, p0, x1, y1, p1, ...]: canvas units within ±1,000,000, y grows downwards, p = pressure 0..1; at most 10,000 points")
    color: Color = Field(default="#1e1e1e", description="#rrggbb")
    width: float = Field(default=4.0, gt=0, le=200, description="base stroke width in canvas units, 0 < w <= 200")
    author: str = Field(default="anonymous", max_length=80, description="display name of the peer that drew it")
    kind: Kind = Field(default="human", description="who drew it")
    run: str | None = Field(default=None, description="the agent run that drew it (agents only); undoing the run erases it")
    behaviour: BehaviourId = Field(default=None, description="the behaviour whose program drew it (then `run` is its firing, or the run that installed it); a behaviour never fires on its own strokes")
    t: int = Field(default_factory=now_ms, description="ms since the Unix epoch when it was committed")

    @field_validator("points")
    @classmethod
    def _points(cls, v: list[float]) -> list[float]:
        if len(v) % 3 != 0 or not v:
            raise ValueError("points must be a non-empty flat list of x, y, pressure triplets")
        if len(v) // 3 > MAX_POINTS:
            raise ValueError(f"a stroke holds at most {MAX_POINTS} points")
        # C-speed passes (min/max/sum over slices): strokes are validated on every read
        total = sum(v)
        if total != total or total in (math.inf, -math.inf):
            raise ValueError(f"points must be finite numbers within ±{COORD_LIMIT:g}")
        pressure = v[2::3]
        if min(pressure) < 0.0 or max(pressure) > 1.0:
            raise ValueError("pressure must be between 0 and 1")
        xs, ys = v[0::3], v[1::3]
        if min(min(xs), min(ys)) < -COORD_LIMIT or max(max(xs), max(ys)) > COORD_LIMIT:
            raise ValueError(f"coordinates must lie within ±{COORD_LIMIT:g} canvas units")
        return v

    def xy(self) -> list[tuple[float, float]]:
        """The points as (x, y) pairs, pressure dropped."""
        p = self.points
        return [(p[i], p[i + 1]) for i in range(0, len(p), 3)]

    def to_doc(self) -> dict:
        """The plain JSON object stored in the `strokes` map (no nulls)."""
        return self.model_dump(exclude_none=True)


WidgetType = Literal["text", "button"]


class Widget(BaseModel):
    """Text or a button placed in the room: a multi-line label, or a caption that fires the
    behaviour that made it when pressed (`POST /rooms/NAME/widgets/ID/press`)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: ItemId = Field(description="same as its key in `widgets`: 1-80 chars of [A-Za-z0-9_.:-]")
    type: WidgetType = Field(description="\"text\": a label (lines split on \\n); \"button\": a caption people press")
    x: float = Field(ge=-COORD_LIMIT, le=COORD_LIMIT, description="left edge in canvas units (y grows downwards)")
    y: float = Field(ge=-COORD_LIMIT, le=COORD_LIMIT, description="top edge in canvas units")
    text: str = Field(max_length=MAX_WIDGET_TEXT, description=f"the text (at most {MAX_WIDGET_TEXT:,} characters), or a button's label (at most {MAX_LABEL})")
    size: float = Field(default=24.0, gt=0, le=1000, description="font size in canvas units, 0 < size <= 1000")
    color: Color = Field(default="#1e1e1e", description="#rrggbb")
    author: str = Field(default="anonymous", max_length=80, description="display name of the peer that placed it")
    kind: Kind = Field(default="human", description="who placed it")
    run: str | None = Field(default=None, description="the agent run that placed it (agents only); undoing the run removes it")
    behaviour: BehaviourId = Field(default=None, description="the behaviour whose program placed it; a button's press fires this behaviour")
    anyone: bool = Field(default=False, description="buttons: whether a view link may press it (then the firing acts with its installer's grant); "
                         "otherwise only edit links may")
    t: int = Field(default_factory=now_ms, description="ms since the Unix epoch when it was placed or last changed")

    @field_validator("x", "y", "size")
    @classmethod
    def _finite(cls, v: float) -> float:
        if v != v or v in (math.inf, -math.inf):
            raise ValueError("must be a finite number")
        return v

    @model_validator(mode="after")
    def _label(self) -> Widget:
        if self.type == "button" and len(self.text) > MAX_LABEL:
            raise ValueError(f"a button's label is at most {MAX_LABEL} characters")
        if self.type == "button" and not self.text.strip():
            raise ValueError("a button needs a label")
        return self

    def to_doc(self) -> dict:
        """The plain JSON object stored in the `widgets` map (no nulls)."""
        return self.model_dump(exclude_none=True)


class Message(BaseModel):
    """A chat entry: people's prompts, agents' status lines and replies."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str = Field(default_factory=lambda: new_id("m"), description="unique id")
    author: str = Field(max_length=80, description="display name of who wrote it")
    kind: Kind = Field(default="human", description="a person's line, or an agent's status or reply; \"agent\" only from the server's own peers "
                       "(its hosted agent, an MCP session): a line anyone else inserts with \"agent\" is rewritten to \"human\" before anybody sees it")
    text: str = Field(max_length=MAX_TEXT, description="the line; prompts to agents start with @agent (or the agent's name)")
    t: int = Field(default_factory=now_ms, description="ms since the Unix epoch")
    run: str | None = Field(default=None, description="the agent run it belongs to, if any (its card shows the server's record of that run; "
                            "on a `human` line it is not the agent's word)")
    behaviour: BehaviourId = Field(default=None, description="the behaviour that said it, if any; only from the server's own peers "
                                  "(dropped from anyone else's line)")

    def to_doc(self) -> dict:
        return self.model_dump(exclude_none=True)
