"""A PNG of the room, or of a box of it, drawn on the server: how a multimodal MCP client looks
at what it drew and checks its work (the `view` tool).

Why Pillow and plain polylines: the server has no browser, and a model checking a drawing
needs the geometry (where, how big, what colour), not perfect-freehand's pressure outline.
Strokes are drawn oldest first at their width, with round joins and caps, at twice the size
and then halved, which smooths their edges.

Limits (`view`'s description and the README quote them): the image's longer side is `px`
pixels, MIN_PX..MAX_PX (default DEFAULT_PX); the PNG is at most MAX_PNG_BYTES, and drawing
it costs at most about INK_BUDGET pixels of ink (a busier picture is drawn smaller); the box shown is at least MIN_SIDE canvas units a
side, so no zoom can push pixel coordinates past what the renderer handles.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import NamedTuple

from PIL import Image, ImageDraw

from canvas import BBox, Stroke, bbox, length, union
from canvas.schema import COORD_LIMIT

DEFAULT_PX = 512
MIN_PX = 64
MAX_PX = 1024
MAX_PNG_BYTES = 1 << 20
MIN_SIDE = 16.0
"""Canvas units: a smaller box is grown about its centre (at most MAX_PX / MIN_SIDE px per unit)."""
EMPTY_BOX = BBox(0.0, 0.0, 800.0, 600.0)
"""What an empty room shows."""
BACKGROUND = "#fbfbfc"
"""The page's background (web/src/styles.css --bg)."""
SUPERSAMPLE = 2
INK_BUDGET = 2e8
"""Pixels of ink (stroke length x width, at the drawing scale) one picture may cost, about a
quarter of a second of Pillow's time: past it the picture is drawn smaller."""


class View(NamedTuple):
    """A rendered picture and where it sits on the canvas."""

    png: bytes
    box: BBox
    width: int
    height: int
    strokes: int
    """How many strokes touch the box (and were drawn)."""

    @property
    def units_per_px(self) -> float:
        return (self.box.x1 - self.box.x0) / self.width


def frame(strokes: Sequence[Stroke], box: BBox | None = None) -> BBox:
    """The box to show: `box` (grown to MIN_SIDE), else every stroke with a margin."""
    if box is None:
        around = union(bbox(s.points) for s in strokes)
        if around is None:
            return EMPTY_BOX
        box = around.grow(max(10.0, 0.05 * max(around.width, around.height)))
    cx, cy = box.center
    w, h = max(box.width, MIN_SIDE), max(box.height, MIN_SIDE)
    return BBox(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)


def check_box(box: BBox) -> str | None:
    """Why `box` cannot be shown, or None."""
    if not all(-COORD_LIMIT <= v <= COORD_LIMIT for v in box):
        return f"box coordinates must lie within ±{COORD_LIMIT:g} canvas units"
    if box.x1 <= box.x0 or box.y1 <= box.y0:
        return "box needs x0 < x1 and y0 < y1 (canvas units, y grows downwards)"
    return None


def render(strokes: Sequence[Stroke], box: BBox | None = None, px: int = DEFAULT_PX) -> View:
    """Draw the strokes that touch the box; CPU-bound (call it off the event loop)."""
    shown = frame(strokes, box)
    px = min(MAX_PX, max(MIN_PX, px))
    visible = [s for s in strokes if bbox(s.points).grow(s.width).intersects(shown)]
    ink = sum(length(s.points) * s.width for s in visible)  # canvas units²; whole strokes, so at most an overestimate
    zoom = px * SUPERSAMPLE / max(shown.width, shown.height)
    if ink * zoom * zoom > INK_BUDGET:
        px = max(MIN_PX, int(px * math.sqrt(INK_BUDGET / (ink * zoom * zoom))))
    while True:
        view = _draw(visible, shown, px)
        if len(view.png) <= MAX_PNG_BYTES or px <= MIN_PX:
            return view
        px = max(MIN_PX, int(px * 0.7))


def _draw(strokes: Sequence[Stroke], box: BBox, px: int) -> View:
    scale = px / max(box.width, box.height)
    width, height = max(1, round(box.width * scale)), max(1, round(box.height * scale))
    k = scale * SUPERSAMPLE
    image = Image.new("RGB", (width * SUPERSAMPLE, height * SUPERSAMPLE), BACKGROUND)
    pen = ImageDraw.Draw(image)
    for s in strokes:
        points = [((x - box.x0) * k, (y - box.y0) * k) for x, y in s.xy()]
        w = max(1, round(s.width * k))
        if len(points) > 1:
            pen.line(points, fill=s.color, width=w, joint="curve")
        r = w / 2
        for x, y in (points[0], points[-1]):  # round caps (and a dot for a one-point stroke)
            pen.ellipse((x - r, y - r, x + r, y + r), fill=s.color)
    out = io.BytesIO()
    image.reduce(SUPERSAMPLE).save(out, format="PNG")
    return View(out.getvalue(), box, width, height, len(strokes))
