"""THE canvas JavaScript API, defined once as sandbox Capabilities.

Why one definition: the TypeScript declarations and docs the model reads (`codemode.search`),
the argument validation the sandbox does, and the handlers that touch the room all come from
the `Capability` objects below, so they cannot drift apart.

Why a session per sandbox run: handlers read a snapshot of the room taken when the run starts
(plus the run's own pending writes) and BUFFER writes. `CanvasSession.commit` applies the
buffer to the room in ONE transaction only after the run succeeded, so a failed run writes
nothing and other peers see an agent's drawing appear at once, attributed to its run id.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent.contract.box import Box
from agent.contract.people import PEOPLE_CAP, People, PeopleParams
from agent.contract.widgets import READ_WIDGET_CAPS, WRITE_WIDGET_CAPS, WidgetBook
from agent.sandbox import Binding, Capability, CapabilityError, RawJSON
from canvas import CanvasDoc, Message, Stroke, Widget, new_id, now_ms
from canvas.geometry import BBox, bbox
from canvas.schema import COORD_LIMIT, MAX_POINTS, MAX_TEXT

Grant = Literal["read", "write"]
"""What a run may do to the room: read it, or read and write it (run records carry it too)."""


class Quotas(BaseModel):
    """Per-run write budget: a runaway loop must hit a clear error, not flood the room."""

    max_strokes: int = 200
    max_points: int = 20_000
    max_erases: int = 500
    max_messages: int = 5
    max_widgets: int = 50
    """Texts and buttons placed per run."""
    max_widget_updates: int = 200


# ---- types the model sees -------------------------------------------------------------


class StrokeFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")
    box: Box | None = Field(default=None, description="only strokes whose bbox intersects this box")
    author: str | None = Field(default=None, description="only strokes by this author name")
    kind: Literal["human", "agent"] | None = Field(default=None, description="only strokes drawn by humans or by agents")


class StrokeView(BaseModel):
    id: str
    points: list[list[float]] = Field(description="[[x, y], ...] in drawing order")
    pressure: list[float] | None = Field(default=None, description="per-point pressure 0..1, only when it varies")
    color: str
    width: float
    author: str
    kind: Literal["human", "agent"]
    run: str | None = Field(default=None, description="the agent run or behaviour firing that drew it")
    behaviour: str | None = Field(default=None, description="the behaviour that drew it, if any")
    bbox: Box


class StrokesParams(BaseModel):
    filter: StrokeFilter | None = None


class StrokeParams(BaseModel):
    id: str


class NoParams(BaseModel):
    pass


class DrawSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    points: list[list[float]] = Field(description=f"[[x, y], ...] or [[x, y, pressure], ...]; at least 1 point; |x|, |y| <= {COORD_LIMIT:g}")
    color: str = Field(default="#1e1e1e", description="#rrggbb")
    width: float = Field(default=4.0, description="stroke width in canvas units, 0 < width <= 200")


class DrawParams(BaseModel):
    stroke: DrawSpec


class EraseParams(BaseModel):
    id: str


class SayParams(BaseModel):
    text: str


# ---- the capabilities (the API reference is generated from these) ----------------------

STROKES_CAP = Capability(
    name="canvas.strokes",
    params=StrokesParams,
    returns=list[StrokeView],
    doc="All strokes in the room (as of the start of this run, plus this run's own drawing), "
    "oldest first. Optional filter: {box: {x0,y0,x1,y1}, author, kind}. Each stroke has raw "
    "points [[x,y],...] and its bbox, so you can analyse shapes with ordinary code. `author` is a display name "
    "(search 'people' for who is who).",
    example="const s = canvas.strokes();\nconst long = s.filter(k => Math.hypot(k.bbox.x1 - k.bbox.x0, k.bbox.y1 - k.bbox.y0) > 200);",
)
STROKE_CAP = Capability(
    name="canvas.stroke",
    params=StrokeParams,
    returns=StrokeView | None,
    doc="One stroke by id, or null if there is none.",
    example="const s = canvas.stroke(id); if (s) console.log(s.points.length);",
)
BOUNDS_CAP = Capability(
    name="canvas.bounds",
    params=NoParams,
    returns=Box | None,
    doc="The box around every stroke in the room, or null when the canvas is empty.",
    example="const b = canvas.bounds(); // {x0, y0, x1, y1}",
)
DRAW_CAP = Capability(
    name="canvas.draw",
    params=DrawParams,
    returns=str,
    doc="Draw one stroke (a polyline through the points) and return its new id. Needs write "
    "access. Drawing is buffered: it reaches the room, in one step, when the run succeeds; "
    "if the run throws, nothing is drawn. Close a shape by repeating its first point.",
    example="const pts = [];\nfor (let i = 0; i <= 32; i++) { const a = i / 32 * 2 * Math.PI; pts.push([cx + r * Math.cos(a), cy + r * Math.sin(a)]); }\ncanvas.draw({points: pts, color: '#d33', width: 4});",
)
ERASE_CAP = Capability(
    name="canvas.erase",
    params=EraseParams,
    returns=bool,
    doc="Erase a stroke, a text or a button by id; true if it existed. Needs write access. Buffered like draw.",
    example="for (const s of canvas.strokes({kind: 'agent'})) canvas.erase(s.id);",
)
SAY_CAP = Capability(
    name="canvas.say",
    params=SayParams,
    returns=None,
    doc="Post a short chat message to the room (shown when the run succeeds). Needs write access.",
    example="canvas.say('Done: drew a circle at (120, 80).');",
)

READ_CAPS: tuple[Capability, ...] = (STROKES_CAP, STROKE_CAP, BOUNDS_CAP, PEOPLE_CAP, *READ_WIDGET_CAPS)
WRITE_CAPS: tuple[Capability, ...] = (DRAW_CAP, ERASE_CAP, SAY_CAP, *WRITE_WIDGET_CAPS)
ALL_CAPS: tuple[Capability, ...] = READ_CAPS + WRITE_CAPS


def capabilities(grant: Grant) -> tuple[Capability, ...]:
    return ALL_CAPS if grant == "write" else READ_CAPS


# ---- one run's view of the room --------------------------------------------------------


def view(stroke: Stroke, box: BBox | None = None) -> dict[str, Any]:
    """The JSON a stroke is shown as in JS (pairs instead of flat triplets)."""
    p = stroke.points
    pressures = p[2::3]
    b = box or bbox(p)
    out: dict[str, Any] = {
        "id": stroke.id,
        "points": [[p[i], p[i + 1]] for i in range(0, len(p), 3)],
        "color": stroke.color,
        "width": stroke.width,
        "author": stroke.author,
        "kind": stroke.kind,
        "bbox": {"x0": b.x0, "y0": b.y0, "x1": b.x1, "y1": b.y1},
    }
    if len(set(pressures)) > 1:
        out["pressure"] = pressures
    if stroke.run:
        out["run"] = stroke.run
    if stroke.behaviour:
        out["behaviour"] = stroke.behaviour
    return out


class Views:
    """Each stroke's JS view as JSON text and its box, computed once per stroke object.

    Why: a run that lists a 10,000-stroke room would otherwise rebuild 10,000 views (and
    boxes, for filters) on every call; a room's long-lived reader (the agent peer) keeps one of
    these so a stroke costs its view once. Entries are keyed by id and checked by identity, so
    a replaced stroke is never served stale; `drop` forgets erased ones. Safe to read from
    sandbox threads (single dict operations only)."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[Stroke, str, BBox]] = {}
        self._boxes: dict[str, tuple[Stroke, BBox]] = {}  # boxes alone: a box filter or `bounds` encodes nothing

    def entry(self, stroke: Stroke, keep: bool = True) -> tuple[str, BBox]:
        """`keep=False` for a stroke that is not in the room (yet): a run's own drawing."""
        hit = self._entries.get(stroke.id)
        if hit is not None and hit[0] is stroke:
            return hit[1], hit[2]
        box = self.box(stroke, keep)
        text = json.dumps(view(stroke, box), separators=(",", ":"), allow_nan=False)
        if keep:
            self._entries[stroke.id] = (stroke, text, box)
        return text, box

    def box(self, stroke: Stroke, keep: bool = True) -> BBox:
        """The stroke's box (its points', as its view shows), computed once."""
        hit = self._boxes.get(stroke.id)
        if hit is not None and hit[0] is stroke:
            return hit[1]
        box = bbox(stroke.points)
        if keep:
            self._boxes[stroke.id] = (stroke, box)
        return box

    def drop(self, stroke_id: str) -> None:
        self._entries.pop(stroke_id, None)
        self._boxes.pop(stroke_id, None)


class CanvasSession:
    """Snapshot + write buffer for one sandbox run; `commit` makes the buffer one transaction.

    `snapshot` is the room's strokes (a dict by id is taken over as is, without a copy). By
    default the run's strokes get fresh random ids and the current time; a behaviour's firing
    passes `id_prefix` and `clock_ms` instead, so the same firing always writes the same
    strokes (it can be replayed), and `behaviour` tags everything it writes. `people`: who is in the
    room now (presence, read at call time), for `canvas.people()`; without it, that call fails.
    `widgets`: the room's texts and buttons (`CanvasDoc.widgets()`; none given: the run sees none), kept by a `WidgetBook`."""

    def __init__(self, snapshot: Iterable[Stroke] | dict[str, Stroke], *, author: str, run_id: str, grant: Grant, quotas: Quotas | None = None,
                 behaviour: str | None = None, id_prefix: str | None = None, clock_ms: int | None = None, views: Views | None = None,
                 people: People | None = None, widgets: Iterable[Widget] = ()) -> None:
        self.author = author
        self.run_id = run_id
        self.grant: Grant = grant
        self.quotas = quotas or Quotas()
        self.behaviour = behaviour
        self._prefix = id_prefix
        self._clock = clock_ms
        self._views = views or Views()
        self._people = people
        self._strokes: dict[str, Stroke] = snapshot if isinstance(snapshot, dict) else {s.id: s for s in snapshot}
        self.added: list[Stroke] = []
        self.erased: list[str] = []
        self.said: list[Message] = []
        self._points = 0
        self._erases = 0  # widgets erased (strokes erased are `erased`)
        self._made = 0
        self._own: set[str] = set()  # ids this run drew: not (yet) in the room, so never cached in `views`
        self.widgets = WidgetBook(widgets, author=author, run_id=run_id, behaviour=behaviour, new_id=self._new_id, now=self._now,
                                  max_widgets=self.quotas.max_widgets, max_updates=self.quotas.max_widget_updates)

    def _new_id(self, kind: str) -> str:
        self._made += 1
        return f"{self._prefix}.{kind}{self._made}" if self._prefix else new_id(kind)

    def _now(self) -> int:
        return self._clock if self._clock is not None else now_ms()

    @classmethod
    def of(cls, doc: CanvasDoc, **kw: Any) -> CanvasSession:
        return cls(doc.strokes(), widgets=doc.widgets(), **kw)

    # handlers ------------------------------------------------------------------------

    def strokes(self, params: StrokesParams) -> RawJSON:
        f = params.filter
        box = BBox(f.box.x0, f.box.y0, f.box.x1, f.box.y1) if f is not None and f.box is not None else None
        entry, box_of, own = self._views.entry, self._views.box, self._own
        out = []
        for s in self._strokes.values():
            if f is not None:
                if f.author is not None and s.author != f.author:
                    continue
                if f.kind is not None and s.kind != f.kind:
                    continue
            if box is not None and not box_of(s, s.id not in own).intersects(box):
                continue  # encoded only if returned: a box query costs what it returns
            out.append(entry(s, s.id not in own)[0])
        return RawJSON("[" + ",".join(out) + "]")

    def stroke(self, params: StrokeParams) -> RawJSON | None:
        s = self._strokes.get(params.id)
        return RawJSON(self._views.entry(s, s.id not in self._own)[0]) if s is not None else None

    def bounds(self, params: NoParams) -> dict[str, float] | None:
        boxes = [self._views.box(s, s.id not in self._own) for s in self._strokes.values()]
        if not boxes:
            return None
        return {"x0": min(b.x0 for b in boxes), "y0": min(b.y0 for b in boxes), "x1": max(b.x1 for b in boxes), "y1": max(b.y1 for b in boxes)}

    def people(self, params: PeopleParams) -> list[dict[str, Any]]:
        if self._people is None:
            raise CapabilityError("canvas.people: who is here is not known to this program (it does not run in a room's peer)")
        return self._people()

    def draw(self, params: DrawParams) -> str:
        spec = params.stroke
        q = self.quotas
        if len(self.added) >= q.max_strokes:
            raise CapabilityError(f"quota: at most {q.max_strokes} strokes per run; draw fewer, larger strokes or split the work over several runs")
        if not spec.points:
            raise CapabilityError("points must hold at least one [x, y] point")
        if len(spec.points) > MAX_POINTS:
            raise CapabilityError(f"a stroke holds at most {MAX_POINTS} points; split it")
        if self._points + len(spec.points) > q.max_points:
            raise CapabilityError(f"quota: at most {q.max_points} points per run; use fewer points per stroke (a circle needs ~32)")
        flat: list[float] = []
        for i, pt in enumerate(spec.points):
            if len(pt) not in (2, 3):
                raise CapabilityError("each point is [x, y] or [x, y, pressure]")
            if not (-COORD_LIMIT <= pt[0] <= COORD_LIMIT and -COORD_LIMIT <= pt[1] <= COORD_LIMIT):
                raise CapabilityError(f"point {i} is [{pt[0]:g}, {pt[1]:g}]; coordinates must lie within "
                                      f"±{COORD_LIMIT:g} canvas units (the canvas's extent)")
            flat.extend((pt[0], pt[1], pt[2] if len(pt) == 3 else 0.5))
        if len(spec.points) == 1:
            flat.extend(flat[:3])  # a dot: one zero-length segment renders everywhere
        try:
            stroke = Stroke(id=self._new_id("a"), points=flat, color=spec.color, width=spec.width, author=self.author, kind="agent",
                            run=self.run_id, behaviour=self.behaviour, t=self._now())
        except ValidationError as e:
            raise CapabilityError("; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors())) from None
        self._points += len(spec.points)
        self.added.append(stroke)
        self._own.add(stroke.id)
        self._strokes[stroke.id] = stroke
        return stroke.id

    def erase(self, params: EraseParams) -> bool:
        if len(self.erased) + self._erases >= self.quotas.max_erases:
            raise CapabilityError(f"quota: at most {self.quotas.max_erases} erases per run")
        s = self._strokes.pop(params.id, None)
        if s is None:
            if self.widgets.erase(params.id):
                self._erases += 1
                return True
            return False
        if any(a.id == s.id for a in self.added):
            self.added = [a for a in self.added if a.id != s.id]
        else:
            self.erased.append(s.id)
        return True

    def say(self, params: SayParams) -> None:
        if len(self.said) >= self.quotas.max_messages:
            raise CapabilityError(f"quota: at most {self.quotas.max_messages} messages per run")
        text = params.text.strip()
        if not text:
            raise CapabilityError("text is empty")
        self.said.append(Message(id=self._new_id("m"), author=self.author, kind="agent", text=text[:MAX_TEXT], run=self.run_id,
                                 behaviour=self.behaviour, t=self._now()))
        return None

    # wiring --------------------------------------------------------------------------

    def bindings(self) -> list[Binding]:
        handlers: dict[str, Callable[[Any], Any]] = {
            "canvas.strokes": self.strokes,
            "canvas.stroke": self.stroke,
            "canvas.bounds": self.bounds,
            "canvas.people": self.people,
            "canvas.draw": self.draw,
            "canvas.erase": self.erase,
            "canvas.say": self.say,
            **self.widgets.handlers(),
        }
        return [(cap, handlers[cap.name]) for cap in capabilities(self.grant)]

    @property
    def dirty(self) -> bool:
        return bool(self.added or self.erased or self.said or self.widgets.dirty)

    def commit(self, doc: CanvasDoc) -> None:
        """Apply the buffered writes as ONE transaction (call only after a successful run)."""
        if self.dirty:
            origin = ("behaviour", self.behaviour, self.run_id) if self.behaviour else ("agent", self.run_id)
            with doc.doc.transaction(origin=origin):  # nested ones with the same origin join it
                doc.apply(self.added, self.erased, self.said, origin=origin)
                if self.widgets.dirty:
                    doc.put_widgets(self.widgets.put.values(), origin=origin)
                    doc.erase(self.widgets.removed, origin=origin)


def undo_run(doc: CanvasDoc, run_id: str) -> list[str]:
    """Erase every stroke and widget (text, button) a run made, in one transaction. Returns the erased ids."""
    ids = [s.id for s in doc.strokes() if s.run == run_id] + [w.id for w in doc.widgets() if w.run == run_id]
    if ids:
        doc.erase(ids, origin=("undo", run_id))
    return ids
