"""A room's strokes encoded once: each stroke's JSON bytes, in reading order, and the room's box.

Why: `GET /rooms/NAME/strokes` used to validate every stroke of the document and encode the
whole answer per request (1.4 s and the room's size in memory, per request, in a room of
150 strokes of 10,000 points). This view validates and encodes each stroke once, when it
arrives, from the change events the strokes map emits anyway (the way the agent's
`agent.behaviours.mirror` folds them), so an answer is the concatenation of bytes already held:
it costs what it returns, not the room's size in parsing.

It is built lazily by the first read (on the event loop, in slices that give the loop back every
`SLICE_S`, so a big room's first read never freezes the other rooms), kept in step while the
room is loaded, and dropped with the room (`Room.encoded`). Invalid entries are skipped, as
`CanvasDoc.strokes()` skips them; the order is the same, `(t, id)`, so the bytes a reader gets
are exactly `StrokesResponse`'s.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from pycrdt import Doc, Map, Subscription
from pydantic import ValidationError

from canvas import Stroke
from canvas.geometry import BBox, bbox, union
from canvas.schema import STROKES

if TYPE_CHECKING:
    from .metrics import Metrics

log = logging.getLogger("inhabit.encoded")

SLICE_S = 0.01
"""Seconds of encoding the first build does before it gives the event loop back."""

Position = tuple[int, str, str]
"""Where a stroke sits in reading order: (t, id, its key in the strokes map)."""


class EncodedStrokes:
    """One room's strokes as JSON bytes (`StrokesResponse`'s items), kept in step with `doc`.

    `build()` once (readers await the same build), then `page(after, limit)` and `after(pos)`
    read in `(t, id)` order; `bbox()` is the room's box. `close()` stops following the document."""

    def __init__(self, doc: Doc, metrics: Metrics | None = None) -> None:
        self.doc = doc
        self.metrics = metrics
        self.strokes_map: Map = doc.get(STROKES, type=Map)
        self.encoded: dict[str, bytes] = {}  # map key -> the stroke's JSON
        self.positions: dict[str, Position] = {}  # map key -> its place in `order`
        self.order: list[Position] = []  # sorted: reading order
        self.boxes: dict[str, BBox] = {}
        self._bbox: BBox | None = None
        self._bbox_stale = False
        self.encodes = 0
        """Strokes validated and encoded so far (a test reads it through /metrics)."""
        self._touched: set[str] | None = None  # while building: keys the change events already handled
        self._built: asyncio.Task[None] | None = None
        self._subscription: Subscription | None = None
        self.broken = False
        """A change could not be folded in: the room builds a new view at the next read."""

    # building and following

    async def build(self) -> None:
        """Encode the document once (shared by every reader that asks meanwhile)."""
        if self._built is None:
            self._built = asyncio.ensure_future(self._build())
        await asyncio.shield(self._built)

    async def _build(self) -> None:
        self._touched = set()
        self._subscription = self.strokes_map.observe(self._on_change)  # first: nothing slips between
        keys = list(self.strokes_map.keys())
        started = time.perf_counter()
        for key in keys:
            if key not in self._touched:  # else a change event already put its newer value
                self._put(key, self.strokes_map.get(key))
            if time.perf_counter() - started > SLICE_S:
                await asyncio.sleep(0)  # the other rooms go on; events in between are folded in
                started = time.perf_counter()
        self._touched = None

    def close(self) -> None:
        if self._subscription is not None:
            self.strokes_map.unobserve(self._subscription)
            self._subscription = None
        if self._built is not None and not self._built.done():
            self._built.cancel()

    def _on_change(self, event: Any) -> None:  # a pycrdt MapEvent (its `keys` is untyped)
        try:
            for key, change in event.keys.items():
                if self._touched is not None:
                    self._touched.add(key)
                if change.get("action") in ("add", "update"):
                    self._put(key, change.get("newValue"))
                else:
                    self._drop(key)
        except Exception:  # never let a reader's view break the room's hot path
            log.exception("encoded strokes: a change could not be folded in; rebuilding on the next read")
            self.close()
            self.broken = True

    def _put(self, key: str, value: Any) -> None:
        self._drop(key)
        if not isinstance(value, dict):
            return
        try:
            stroke = Stroke.model_validate(value)
        except ValidationError:
            return  # skipped, as CanvasDoc.strokes() skips it
        self.encodes += 1
        if self.metrics is not None:
            self.metrics.strokes_encoded += 1
        self.encoded[key] = Stroke.__pydantic_serializer__.to_json(stroke, exclude_none=True)
        pos = (stroke.t, stroke.id, key)
        self.positions[key] = pos
        bisect.insort(self.order, pos)
        box = bbox(stroke.points)
        self.boxes[key] = box
        if not self._bbox_stale:
            self._bbox = box if self._bbox is None else self._bbox.union(box)

    def _drop(self, key: str) -> None:
        pos = self.positions.pop(key, None)
        if pos is None:
            return
        del self.encoded[key]
        i = bisect.bisect_left(self.order, pos)
        del self.order[i]
        box, whole = self.boxes.pop(key), self._bbox
        if whole is not None and (box.x0 <= whole.x0 or box.y0 <= whole.y0 or box.x1 >= whole.x1 or box.y1 >= whole.y1):
            self._bbox_stale = True  # it touched the edge: recomputed when asked

    # reading

    def __len__(self) -> int:
        return len(self.order)

    def bbox(self) -> BBox | None:
        """The box of every stroke (None: no strokes)."""
        if self._bbox_stale:
            self._bbox = union(self.boxes.values())
            self._bbox_stale = False
        return self._bbox

    def position_of(self, key: str) -> Position | None:
        """Where the stroke under `key` sits in reading order (None: no such stroke)."""
        return self.positions.get(key)

    def after(self, pos: Position | None) -> Iterator[tuple[Position, bytes]]:
        """The strokes after `pos` (None: from the first), in reading order, each with its place.

        Found again by bisection at each step, never copied: strokes erased meanwhile are
        skipped, strokes added ahead of the reader are included, and a reader pins no bytes of
        strokes it has not reached."""
        order, encoded = self.order, self.encoded
        i = 0 if pos is None else bisect.bisect_right(order, pos)
        while i < len(order):
            here = order[i]
            yield here, encoded[here[2]]
            if i < len(order) and order[i] is here:
                i += 1
            else:  # the order changed while the caller held this stroke: find our place again
                i = bisect.bisect_right(order, here)
