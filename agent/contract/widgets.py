"""Text and buttons in the canvas JS API, defined once: `canvas.text/button/update/widgets`
(and what `canvas.erase` does to a widget), their params and the views the model sees.

Why apart from `agent.contract.canvas`: strokes and widgets are different things with the same
run discipline (a snapshot when the run starts, writes buffered and committed in the run's one
transaction), so the session (`canvas.CanvasSession`) holds a `WidgetBook` for the widget part
and hands its handlers out with its own. `canvas.ALL_CAPS` lists the capabilities below, so the
TypeScript declarations, the docs `search` returns, MCP and the argument checks come from here.

A button belongs to the behaviour whose program made it (its install run or a firing): a press
on it fires that behaviour (`POST /rooms/NAME/widgets/ID/press`, `agent.behaviours.presses`), so
`canvas.button` outside a behaviour's program is an error that says how to make one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent.contract.box import Box
from agent.sandbox import Capability, CapabilityError
from canvas.schema import MAX_LABEL, MAX_WIDGET_TEXT, MAX_WIDGETS, Widget

BUTTONS_IN_BEHAVIOURS = ("buttons are made by behaviours: install one with `on: [\"press\", …]` and make the button in its program "
                         "(its install run or a firing); a press on the button then fires it with event.type 'press'")


class WidgetFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")
    box: Box | None = Field(default=None, description="only widgets whose box (estimated from text and size) intersects this box")
    type: Literal["text", "button"] | None = Field(default=None, description="only text or only buttons")
    author: str | None = Field(default=None, description="only widgets placed by this author name")
    kind: Literal["human", "agent"] | None = Field(default=None, description="only widgets placed by people or by agents")


class WidgetView(BaseModel):
    id: str
    type: Literal["text", "button"]
    x: float = Field(description="left edge")
    y: float = Field(description="top edge")
    text: str = Field(description="the text, or a button's label")
    size: float
    color: str
    author: str
    kind: Literal["human", "agent"]
    run: str | None = Field(default=None, description="the agent run or behaviour firing that placed it")
    behaviour: str | None = Field(default=None, description="the behaviour that made it; a press on a button fires it")
    anyone: bool | None = Field(default=None, description="buttons: view links may press it too")
    bbox: Box = Field(description="its box, estimated from its text and size")


class WidgetsParams(BaseModel):
    filter: WidgetFilter | None = None


class TextSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    x: float = Field(description="left edge in canvas units")
    y: float = Field(description="top edge in canvas units (y grows downwards)")
    text: str = Field(description=f"the text; lines split on \\n; at most {MAX_WIDGET_TEXT:,} characters")
    size: float = Field(default=24.0, description="font size in canvas units, 0 < size <= 1000")
    color: str = Field(default="#1e1e1e", description="#rrggbb")


class TextParams(BaseModel):
    spec: TextSpec


class ButtonSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    x: float = Field(description="left edge in canvas units")
    y: float = Field(description="top edge in canvas units")
    label: str = Field(description=f"its caption, at most {MAX_LABEL} characters")
    color: str = Field(default="#1e1e1e", description="#rrggbb")
    anyone: bool = Field(default=False, description="let view links press it too (the firing then acts with your grant; "
                         "the page marks such buttons); default: edit links only. Only when the user asks for it")


class ButtonParams(BaseModel):
    spec: ButtonSpec


class WidgetChanges(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str | None = Field(default=None, description="new text (or a button's new label)")
    label: str | None = Field(default=None, description="a button's new label (same as text)")
    x: float | None = None
    y: float | None = None
    color: str | None = Field(default=None, description="#rrggbb")


class UpdateParams(BaseModel):
    id: str
    changes: WidgetChanges


TEXT_CAP = Capability(
    name="canvas.text",
    params=TextParams,
    returns=str,
    doc="Place a text (a label of one or more lines) and return its id. Needs write access. Buffered like draw. "
    "Change it later with canvas.update(id, {text}), remove it with canvas.erase(id).",
    example="const score = canvas.text({x: 20, y: -60, text: 'X 0 – O 0', size: 28});",
)
BUTTON_CAP = Capability(
    name="canvas.button",
    params=ButtonParams,
    returns=str,
    doc="Place a button and return its id; only in a behaviour's program (its install run or a firing), whose "
    "behaviour it belongs to: when someone presses it, that behaviour fires with event.type 'press' (if its `on` has "
    "\"press\"), event.widget the button and event.by who pressed. Edit links may press it; view links only if `anyone`.",
    example="if (!state.newGame) state.newGame = canvas.button({x: 20, y: -120, label: 'New game'});\n"
    "if (event.type === 'press' && event.widget.id === state.newGame) { /* start again */ }",
)
UPDATE_CAP = Capability(
    name="canvas.update",
    params=UpdateParams,
    returns=bool,
    doc="Change a text or a button: {text?, label?, x?, y?, color?}; true if it exists. Needs write access. Buffered like draw.",
    example="canvas.update(state.score, {text: `X ${state.x} – O ${state.o}`});",
)
WIDGETS_CAP = Capability(
    name="canvas.widgets",
    params=WidgetsParams,
    returns=list[WidgetView],
    doc="The room's texts and buttons (as of the start of this run, plus this run's own), oldest first. Optional filter: "
    "{box, type: 'text' | 'button', author, kind}.",
    example="const buttons = canvas.widgets({type: 'button'});",
)

READ_WIDGET_CAPS: tuple[Capability, ...] = (WIDGETS_CAP,)
WRITE_WIDGET_CAPS: tuple[Capability, ...] = (TEXT_CAP, BUTTON_CAP, UPDATE_CAP)


def widget_box(w: Widget) -> Box:
    """A widget's box, estimated (a glyph ~0.6 of the size wide, lines 1.25 apart; buttons padded):
    the page measures text, the server has no fonts, and a box query only needs to be close."""
    lines = w.text.split("\n")
    width = 0.6 * w.size * max(len(line) for line in lines)
    height = 1.25 * w.size * len(lines)
    pad = 0.5 * w.size if w.type == "button" else 0.0
    return Box(x0=w.x, y0=w.y, x1=w.x + width + 2 * pad, y1=w.y + height + pad)


def widget_view(w: Widget) -> dict[str, Any]:
    """The JSON a widget is shown as in JS."""
    out = WidgetView(id=w.id, type=w.type, x=w.x, y=w.y, text=w.text, size=w.size, color=w.color, author=w.author, kind=w.kind,
                     run=w.run, behaviour=w.behaviour, anyone=w.anyone if w.type == "button" else None, bbox=widget_box(w))
    return out.model_dump(exclude_none=True)


def _checked(make: Callable[[], Widget]) -> Widget:
    try:
        return make()
    except ValidationError as e:
        raise CapabilityError("; ".join(f"{'.'.join(map(str, x['loc'])) or 'widget'}: {x['msg']}" for x in e.errors())) from None


class WidgetBook:
    """One run's widgets: the room's as the run started, plus its buffered placements, changes and
    removals (committed by `canvas.CanvasSession.commit` in the run's one transaction)."""

    def __init__(self, snapshot: Iterable[Widget], *, author: str, run_id: str, behaviour: str | None, new_id: Callable[[str], str],
                 now: Callable[[], int], max_widgets: int, max_updates: int) -> None:
        self.author, self.run_id, self.behaviour = author, run_id, behaviour
        self._new_id, self._now = new_id, now
        self.max_widgets, self.max_updates = max_widgets, max_updates
        self._widgets: dict[str, Widget] = {w.id: w for w in snapshot}
        self.put: dict[str, Widget] = {}
        """Widgets to write (placed or changed), by id."""
        self.removed: list[str] = []
        """Widgets of the room to remove."""
        self.made: list[str] = []
        """Ids of widgets this run placed (its record lists them; undoing it removes them)."""
        self._updates = 0

    @property
    def dirty(self) -> bool:
        return bool(self.put or self.removed)

    def _place(self, w: Widget) -> str:
        if len(self.made) >= self.max_widgets:
            raise CapabilityError(f"quota: at most {self.max_widgets} texts and buttons per run")
        if len(self._widgets) >= MAX_WIDGETS:
            raise CapabilityError(f"this room holds {MAX_WIDGETS} texts and buttons, the most it may: erase some first")
        self._widgets[w.id] = self.put[w.id] = w
        self.made.append(w.id)
        return w.id

    # handlers ------------------------------------------------------------------------

    def widgets(self, params: WidgetsParams) -> list[dict[str, Any]]:
        f = params.filter
        out = []
        for w in sorted(self._widgets.values(), key=lambda w: (w.t, w.id)):
            if f is not None:
                if (f.type is not None and w.type != f.type) or (f.author is not None and w.author != f.author) or (f.kind is not None and w.kind != f.kind):
                    continue
                if f.box is not None:
                    b = widget_box(w)
                    if b.x1 < f.box.x0 or b.x0 > f.box.x1 or b.y1 < f.box.y0 or b.y0 > f.box.y1:
                        continue
            out.append(widget_view(w))
        return out

    def text(self, params: TextParams) -> str:
        s = params.spec
        return self._place(_checked(lambda: Widget(id=self._new_id("w"), type="text", x=s.x, y=s.y, text=s.text, size=s.size, color=s.color,
                                                   author=self.author, kind="agent", run=self.run_id, behaviour=self.behaviour, t=self._now())))

    def button(self, params: ButtonParams) -> str:
        if self.behaviour is None:
            raise CapabilityError(BUTTONS_IN_BEHAVIOURS)
        s = params.spec
        return self._place(_checked(lambda: Widget(id=self._new_id("w"), type="button", x=s.x, y=s.y, text=s.label, color=s.color,
                                                   author=self.author, kind="agent", run=self.run_id, behaviour=self.behaviour,
                                                   anyone=s.anyone, t=self._now())))

    def update(self, params: UpdateParams) -> bool:
        c = params.changes
        if c.text is not None and c.label is not None:
            raise CapabilityError("give text or label, not both (a button's label is its text)")
        w = self._widgets.get(params.id)
        if w is None:
            return False
        if self._updates >= self.max_updates:
            raise CapabilityError(f"quota: at most {self.max_updates} widget updates per run")
        changes = {k: v for k, v in (("text", c.text if c.text is not None else c.label), ("x", c.x), ("y", c.y), ("color", c.color))
                   if v is not None}
        changed = _checked(lambda: Widget.model_validate({**w.model_dump(), **changes, "t": self._now()}))
        self._updates += 1
        self._widgets[w.id] = self.put[w.id] = changed
        return True

    def erase(self, widget_id: str) -> bool:
        """`canvas.erase` of an id that is not a stroke (the session asks the strokes first)."""
        if self._widgets.pop(widget_id, None) is None:
            return False
        if self.put.pop(widget_id, None) is not None and widget_id in self.made:
            self.made.remove(widget_id)  # placed by this run: it never reaches the room
        else:
            self.removed.append(widget_id)
        return True

    def handlers(self) -> dict[str, Callable[[Any], Any]]:
        return {"canvas.widgets": self.widgets, "canvas.text": self.text, "canvas.button": self.button, "canvas.update": self.update}
