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

Cost bounded by what is drawn, not by the room: each stroke is drawn through at most one point
per pixel it travels (consecutive points in the same pixel are one), the whole picture through
at most POINT_BUDGET points (past it every stroke keeps every n-th point), and drawing stops
at `deadline_s` (checked between strokes): the picture then shows what was drawn, and its
`note` says so. A 10,000-point stroke across 300 pixels costs ~300 points, not 10,000.

Widgets are drawn over the strokes, texts then buttons (the page's layer order), with Pillow's
bundled scalable font (`ImageFont.load_default(size=...)`, Pillow >= 10.1: no font file of
ours to ship) at their `size` in canvas units; a button is a rounded rectangle around its label.
Their cost is bounded too: at most MAX_WIDGETS in a room of at most MAX_WIDGET_TEXT characters
each, only the visible part of a line is laid out (`_visible`), text smaller than MIN_FONT_PX is
drawn as a grey bar, and the deadline is checked between widgets.
"""

from __future__ import annotations

import io
import math
import time
from collections.abc import Sequence
from functools import lru_cache
from typing import NamedTuple

from PIL import Image, ImageDraw, ImageFont

from canvas import BBox, Stroke, Widget, bbox, union
from canvas.geometry import BUTTON_PAD, LINE_HEIGHT, widget_box
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
POINT_BUDGET = 100_000
"""Points one picture is drawn through, at most (after one point per pixel): past it strokes are thinned evenly."""
CURVED_JOINTS = 20_000
"""Joints one picture rounds, at most (Pillow draws each rounded joint in Python, ~10 µs): past
it lines are drawn with plain joints, which their density hides."""
RENDER_S = 5.0
"""Seconds of drawing one picture may take (checked between strokes): past it the rest is left out, with a note."""
MIN_FONT_PX = 8
"""Text drawn smaller than this many pixels (supersampled: half as many in the picture, too small
to read) is a grey bar where each line is, which costs a line instead of its glyphs."""
MAX_FONT_PX = 2048
"""Larger text is drawn at this size (it overflows the picture anyway)."""
TYPOGRAPHY = str.maketrans({"\u2013": "-", "\u2014": "-", "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2026": "..."})
"""Punctuation the bundled font lacks, drawn as its ASCII look-alike (a score "X 0 – O 0" reads)."""
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
    points: int = 0
    """How many points the picture was drawn through (after thinning)."""
    note: str | None = None
    """What the picture leaves out, if anything (the time limit was reached)."""
    widgets: int = 0
    """How many widgets (text, buttons) touch the box (and were drawn)."""

    @property
    def units_per_px(self) -> float:
        return (self.box.x1 - self.box.x0) / self.width


def frame(strokes: Sequence[Stroke], box: BBox | None = None, around: BBox | None = None, widgets: Sequence[Widget] = ()) -> BBox:
    """The box to show: `box` (grown to MIN_SIDE), else every stroke and widget (`around`, if
    the caller knows their box already) with a margin."""
    if box is None:
        around = around if around is not None else union([*(bbox(s.points) for s in strokes), *map(_box, widgets)])
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


class _Line(NamedTuple):
    """A stroke ready to draw: its points in supersampled pixels (one per pixel), colour, width in canvas units."""

    points: list[tuple[float, float]]
    color: str
    width: float


def render(strokes: Sequence[Stroke], box: BBox | None = None, px: int = DEFAULT_PX, *, around: BBox | None = None,
           points: int = POINT_BUDGET, deadline_s: float = RENDER_S, widgets: Sequence[Widget] = ()) -> View:
    """Draw the strokes and widgets that touch the box; CPU-bound (call it off the event loop).
    `around`: the box of every stroke and widget, if the caller keeps it (`RoomView.extent`);
    `points`: the picture's point budget; `deadline_s`: the drawing's time limit."""
    deadline = time.monotonic() + deadline_s
    shown = frame(strokes, box, around, widgets)
    placed = sorted((w for w in widgets if _box(w).intersects(shown)), key=lambda w: w.type == "button")  # buttons above texts
    px = min(MAX_PX, max(MIN_PX, px))
    visible = [s for s in strokes if bbox(s.points).grow(s.width).intersects(shown)]
    k = px * SUPERSAMPLE / max(shown.width, shown.height)
    total = sum(len(s.points) for s in visible) // 3
    step = max(1, math.ceil(total / max(1, points)))
    lines = [_thin(s, shown, k, step) for s in visible]
    ink = sum(_travel(line.points) * line.width for line in lines) * k  # supersampled pixels² at scale k
    if ink > INK_BUDGET:
        px = max(MIN_PX, int(px * math.sqrt(INK_BUDGET / ink)))
    while True:
        view = _draw(lines, k, shown, px, deadline, deadline_s, placed)
        if len(view.png) <= MAX_PNG_BYTES or px <= MIN_PX:
            return view
        px = max(MIN_PX, int(px * 0.7))


def _thin(stroke: Stroke, box: BBox, k: float, step: int) -> _Line:
    """The stroke's every `step`-th point (its last always kept) at scale `k`, consecutive points
    that fall in the same cell merged: one point per pixel of travel, or per half the line's
    width when it is wider (a bend tighter than that is hidden under the line anyway)."""
    p, x0, y0 = stroke.points, box.x0, box.y0
    c = k / max(1.0, stroke.width * k / 2)  # canvas units -> cells
    stride = 3 * step
    out: list[tuple[float, float]] = []
    last: tuple[int, int] | None = None
    for x, y in zip([*p[0::stride], p[-3]], [*p[1::stride], p[-2]], strict=True):
        at = (round((x - x0) * c), round((y - y0) * c))
        if at != last:
            out.append(((x - x0) * k, (y - y0) * k))
            last = at
    return _Line(out, stroke.color, stroke.width)


def _travel(points: list[tuple[float, float]]) -> float:
    return sum(math.hypot(b[0] - a[0], b[1] - a[1]) for a, b in zip(points, points[1:], strict=False))


def _draw(lines: Sequence[_Line], k: float, box: BBox, px: int, deadline: float, limit_s: float, widgets: Sequence[Widget] = ()) -> View:
    """Draw `lines` (at scale `k`), then `widgets`, into an image `px` pixels on its longer side, until `deadline`."""
    scale = px / max(box.width, box.height)
    width, height = max(1, round(box.width * scale)), max(1, round(box.height * scale))
    f = scale * SUPERSAMPLE / k  # from the lines' scale to this picture's
    image = Image.new("RGB", (width * SUPERSAMPLE, height * SUPERSAMPLE), BACKGROUND)
    pen = ImageDraw.Draw(image)
    drawn = used = 0
    curves = CURVED_JOINTS
    note = None
    for line in lines:
        if time.monotonic() > deadline:
            note = (f"drew {drawn} of {len(lines)} strokes: the picture reached its time limit ({limit_s:g} s); "
                    "view a smaller box to see the rest")
            break
        pts = [(x * f, y * f) for x, y in line.points] if f != 1 else line.points
        w = max(1, round(line.width * scale * SUPERSAMPLE))
        if len(pts) > 1:
            curved = w >= 3 and len(pts) <= curves  # Pillow rounds each joint in Python: a few thousand, not a room's worth
            curves -= len(pts) if curved else 0
            pen.line(pts, fill=line.color, width=w, joint="curve" if curved else None)
        r = w / 2
        for x, y in (pts[0], pts[-1]):  # round caps (and a dot for a one-point stroke)
            pen.ellipse((x - r, y - r, x + r, y + r), fill=line.color)
        drawn += 1
        used += len(pts)
    placed = 0
    for widget in widgets if note is None else ():
        if time.monotonic() > deadline:
            note = (f"drew {placed} of {len(widgets)} texts and buttons: the picture reached its time limit ({limit_s:g} s); "
                    "view a smaller box to see the rest")
            break
        _widget(pen, widget, box, scale * SUPERSAMPLE, image.size)
        placed += 1
    out = io.BytesIO()
    image.reduce(SUPERSAMPLE).save(out, format="PNG")
    return View(out.getvalue(), box, width, height, drawn, used, note, placed)


def _box(w: Widget) -> BBox:
    return widget_box(w.type, w.x, w.y, w.text, w.size)


@lru_cache(maxsize=32)
def _font(px: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=px)


def _widget(pen: ImageDraw.ImageDraw, w: Widget, box: BBox, s: float, size: tuple[int, int]) -> None:
    """Draw one widget: `s` pixels per canvas unit, `size` the image's pixels."""
    font_px = w.size * s
    left, top = (w.x - box.x0) * s, (w.y - box.y0) * s
    line_px = LINE_HEIGHT * font_px
    text = w.text.translate(TYPOGRAPHY)
    lines = text.split("\n") if w.type == "text" else [text]
    font = _font(min(MAX_FONT_PX, round(font_px))) if font_px >= MIN_FONT_PX else None
    if w.type == "button":  # a rounded rectangle around its label, measured with the font it is drawn in
        pad = BUTTON_PAD * font_px
        label_px = font.getlength(text) if font is not None else (_box(w).width - 2 * BUTTON_PAD * w.size) * s
        rect = (left, top, left + label_px + 2 * pad, top + line_px + pad)
        pen.rounded_rectangle(rect, radius=max(1.0, font_px * 0.3), fill="#ffffff", outline=w.color, width=max(1, round(font_px / 12)))
        left, top = left + pad, top + pad / 2
    width, height = size
    for i, line in enumerate(lines):
        y = top + i * line_px
        if y > height or y + line_px < 0 or not line.strip():
            continue
        if font is None:  # too small to read: a grey bar where the line is
            bar = y + line_px / 2
            pen.line((left, bar, left + len(line) * 0.5 * font_px, bar), fill="#9a9a9a", width=max(1, round(font_px / 2)))
            continue
        offset, visible = _visible(line, font, left, width)
        if visible:
            pen.text((left + offset, y), visible, fill=w.color, font=font)


def _visible(line: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, left: float, width: int) -> tuple[float, str]:
    """The part of `line` drawn at `left` that falls within 0..`width` pixels, and its offset
    from `left`: a long line at a large size is laid out only where it shows (Pillow rasterises
    the whole string it is given)."""
    if left >= 0 and left + font.getlength(line) <= width:
        return 0.0, line
    x, start, offset = left, None, 0.0
    end = len(line)
    for i, ch in enumerate(line):
        advance = font.getlength(ch)
        if start is None and x + advance >= 0:
            start, offset = i, x - left
        if x > width:
            end = i
            break
        x += advance
    return (offset, line[start:end]) if start is not None else (0.0, "")
