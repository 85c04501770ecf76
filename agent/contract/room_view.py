"""One room's strokes, parsed and encoded once, with a spatial index: what every reader on the
agent side (execute snapshots, behaviours' firings, `view` renders, `canvas.strokes({box})`)
reads instead of parsing the document per request.

Why: reading a room from its document validates every stroke, and a 150-stroke x 10,000-point
room costs 0.4-0.7 s of parsing on the event loop per read (a `view` 5-11 s). A `RoomView`
parses each stroke once, when it arrives, from the change events the document emits anyway
(`follow`), keeps its JS view encoded once (`Views`) and its box in a uniform grid, so a
snapshot is a dict copy and a box query visits only the cells it covers.

Why a uniform grid, hand-written: a grid of stroke boxes is all a box query over strokes
needs, `rtree` (the well-kept library) is a C dependency we do not ship, and the grid is a few
dict operations per stroke. A stroke whose box covers more than `MAX_CELLS` cells is kept in
a short list of large strokes scanned on every query instead (one huge stroke must not cost
thousands of cells).

Widgets (text and buttons) are kept beside the strokes, parsed once from the `widgets` map's
events into `widgets` (the server bounds a room to `MAX_WIDGETS` of them, so a scan is cheap
and they need no grid); a malformed one is skipped, as on every read.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from agent.contract.canvas import Views
from canvas import BBox, CanvasDoc, Stroke, Widget, bbox
from canvas.geometry import widget_box

CELL = 256.0
"""Canvas units a grid cell is a side: about a screenful at the page's default zoom is 16 cells."""
LOAD_POINTS = 100_000
"""Points `load` takes out of the document per slice (each slice ~20 ms of the loop's time)."""
MAX_CELLS = 64
"""A stroke whose box covers more cells than this is kept in the large list."""

Change = Callable[[list[Stroke], list[str], Any], None]
"""A listener: the strokes added (or rewritten), the ids removed, the transaction's origin."""


class RoomView:
    """`strokes`: id -> Stroke (oldest first, a rewrite moves to the end); `views`: each one's JS
    view encoded once; `query(box)`: the strokes whose box meets `box`, oldest first.

    Built once per document (`follow` keeps it in step with it; `close` stops). Read on the
    event loop; `snapshot()` hands a sandbox thread its own dict."""

    def __init__(self, doc: CanvasDoc, *, read: bool = True) -> None:
        """`read=False`: start empty (`load` reads the document in slices)."""
        self.doc = doc
        self.strokes: dict[str, Stroke] = {}
        self.views = Views()
        self.boxes: dict[str, BBox] = {}
        self._order: dict[str, int] = {}  # id -> arrival number: a query's answer is sorted by it
        self._arrivals = 0
        self._cells: dict[tuple[int, int], set[str]] = {}
        self._large: set[str] = set()
        self._listeners: list[Change] = []
        self._subscription: Any = None
        self.widgets: dict[str, Widget] = {}
        """id -> the room's text and buttons (valid ones), oldest first."""
        self.widget_boxes: dict[str, BBox] = {}
        self._widget_subscription: Any = None
        self._touched: set[str] | None = None  # while loading: ids a change reached first
        if read:
            for s in doc.strokes():
                self._put(s)
            self._read_widgets()

    @classmethod
    async def load(cls, doc: CanvasDoc) -> RoomView:
        """A view that follows `doc`, read without holding the event loop: the strokes are
        taken out of the document a slice at a time (LOAD_POINTS points) and validated on a
        worker thread, while changes arriving meanwhile are folded in as usual (and win).

        Why: a big room's first read is seconds of validation, and the loop serves everyone."""
        view = cls(doc, read=False)
        view._touched = set()
        view.follow()
        view._read_widgets()  # at most MAX_WIDGETS small objects: read at once
        try:
            loaded: list[Stroke] = []
            keys = list(doc.strokes_map.keys())
            while keys:
                raw, points = [], 0
                while keys and points < LOAD_POINTS:
                    value = doc.strokes_map.get(keys.pop())
                    if isinstance(value, dict):
                        raw.append(value)
                        points += len(value.get("points") or ())
                loaded += await asyncio.to_thread(_parse_all, raw)
            touched, later = view._touched, list(view.strokes.values())
            loaded.sort(key=lambda s: (s.t, s.id))
            view._reset()
            for s in [s for s in loaded if s.id not in touched] + later:
                view._put(s)
        except BaseException:
            view.close()
            raise
        finally:
            view._touched = None
        return view

    def _reset(self) -> None:
        self.strokes.clear()
        self.boxes.clear()
        self._order.clear()
        self._cells.clear()
        self._large.clear()

    # keeping in step -------------------------------------------------------------------

    def follow(self) -> RoomView:
        """Fold in every change of the document's strokes from now on."""
        if self._subscription is None:
            self._subscription = self.doc.strokes_map.observe(self._on_event)
        if self._widget_subscription is None:
            self._widget_subscription = self.doc.widgets_map.observe(self._on_widgets)
        return self

    def close(self) -> None:
        if self._subscription is not None:
            self.doc.strokes_map.unobserve(self._subscription)
            self._subscription = None
        if self._widget_subscription is not None:
            self.doc.widgets_map.unobserve(self._widget_subscription)
            self._widget_subscription = None
        self._listeners.clear()

    def on_change(self, listener: Change) -> Callable[[], None]:
        """Call `listener(added, removed, origin)` after each change is folded in; returns an unsubscribe."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _on_event(self, event: Any) -> None:
        added, removed = self.apply(event.keys)
        origin = event.transaction.origin
        for listener in list(self._listeners):
            listener(added, removed, origin)

    def apply(self, keys: dict[str, dict[str, Any]]) -> tuple[list[Stroke], list[str]]:
        """Fold in one change (a strokes-map event's `keys`); returns the strokes added (or
        rewritten) and the ids removed."""
        added: list[Stroke] = []
        removed: list[str] = []
        for key, change in keys.items():
            if self._touched is not None:
                self._touched.add(key)
            if change.get("action") in ("add", "update"):
                stroke = _parse(change.get("newValue"))
                if stroke is not None and stroke.id == key:
                    self._drop(key)
                    self._put(stroke)
                    added.append(stroke)
                    continue
            if self._drop(key):
                removed.append(key)
        return added, removed

    def _read_widgets(self) -> None:
        self.widgets.clear()
        self.widget_boxes.clear()
        for w in self.doc.widgets():
            self._put_widget(w)

    def _on_widgets(self, event: Any) -> None:
        for key, change in event.keys.items():
            self.widgets.pop(key, None)
            self.widget_boxes.pop(key, None)
            if change.get("action") in ("add", "update"):
                widget = _parse_widget(change.get("newValue"))
                if widget is not None and widget.id == key:
                    self._put_widget(widget)  # a changed widget moves to the end: the newest

    def _put_widget(self, w: Widget) -> None:
        self.widgets[w.id] = w
        self.widget_boxes[w.id] = widget_box(w.type, w.x, w.y, w.text, w.size)

    def _put(self, stroke: Stroke) -> None:
        sid = stroke.id
        box = bbox(stroke.points).grow(stroke.width / 2)
        self.strokes[sid] = stroke
        self.boxes[sid] = box
        self._arrivals += 1
        self._order[sid] = self._arrivals
        cells = _cells(box)
        if cells is None:
            self._large.add(sid)
            return
        for cell in cells:
            self._cells.setdefault(cell, set()).add(sid)

    def _drop(self, sid: str) -> bool:
        stroke = self.strokes.pop(sid, None)
        self.views.drop(sid)
        if stroke is None:
            return False
        box = self.boxes.pop(sid)
        self._order.pop(sid, None)
        cells = _cells(box)
        if cells is None:
            self._large.discard(sid)
            return True
        for cell in cells:
            members = self._cells.get(cell)
            if members is not None:
                members.discard(sid)
                if not members:
                    del self._cells[cell]
        return True

    # reading ---------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Stroke]:
        """The strokes now, as a dict the caller owns (strokes themselves are immutable): an
        execute's or a firing's `CanvasSession` takes it over as is."""
        return dict(self.strokes)

    def query(self, box: BBox | None) -> list[Stroke]:
        """The strokes whose box (grown by half their width) meets `box` (every stroke for None), oldest first."""
        if box is None:
            return list(self.strokes.values())
        cells = _cells(box)
        if cells is None:  # a box wider than the grid is worth visiting: look at every stroke
            ids = [i for i, b in self.boxes.items() if b.intersects(box)]
        else:
            found: set[str] = set(self._large)
            for cell in cells:
                found.update(self._cells.get(cell, ()))
            ids = [i for i in found if self.boxes[i].intersects(box)]
        ids.sort(key=self._order.__getitem__)
        return [self.strokes[i] for i in ids]

    def widgets_in(self, box: BBox | None) -> list[Widget]:
        """The widgets whose box meets `box` (every widget for None), oldest first."""
        if box is None:
            return list(self.widgets.values())
        return [w for i, w in self.widgets.items() if self.widget_boxes[i].intersects(box)]

    def extent(self) -> BBox | None:
        """The box around every stroke and widget, or None when the room shows nothing."""
        boxes = [b for b in (self.bounds(), *self.widget_boxes.values()) if b is not None]
        if not boxes:
            return None
        return BBox(min(b.x0 for b in boxes), min(b.y0 for b in boxes), max(b.x1 for b in boxes), max(b.y1 for b in boxes))

    def bounds(self) -> BBox | None:
        """The box around every stroke (their drawn width included), or None when there is none."""
        boxes = iter(self.boxes.values())
        first = next(boxes, None)
        if first is None:
            return None
        x0, y0, x1, y1 = first
        for b in boxes:
            x0, y0, x1, y1 = min(x0, b.x0), min(y0, b.y0), max(x1, b.x1), max(y1, b.y1)
        return BBox(x0, y0, x1, y1)


def _cells(box: BBox) -> list[tuple[int, int]] | None:
    """The grid cells `box` covers, or None past MAX_CELLS."""
    cx0, cy0 = math.floor(box.x0 / CELL), math.floor(box.y0 / CELL)
    cx1, cy1 = math.floor(box.x1 / CELL), math.floor(box.y1 / CELL)
    if (cx1 - cx0 + 1) * (cy1 - cy0 + 1) > MAX_CELLS:
        return None
    return [(x, y) for x in range(cx0, cx1 + 1) for y in range(cy0, cy1 + 1)]


def _parse_all(values: list[Any]) -> list[Stroke]:
    return [s for s in map(_parse, values) if s is not None]


def _parse_widget(value: Any) -> Widget | None:
    if not isinstance(value, dict):
        return None
    try:
        return Widget.model_validate(value)
    except ValidationError:
        return None


def _parse(value: Any) -> Stroke | None:
    if not isinstance(value, dict):
        return None
    try:
        return Stroke.model_validate(value)
    except ValidationError:
        return None
