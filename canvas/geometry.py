"""Plane geometry over strokes and widgets: boxes, lengths, hit-testing. Pure functions, no document."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import NamedTuple


class BBox(NamedTuple):
    """Axis-aligned box, min corner inclusive. Canvas y grows downwards, like the screen."""

    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    @property
    def center(self) -> tuple[float, float]:
        return ((self.x0 + self.x1) / 2, (self.y0 + self.y1) / 2)

    def intersects(self, other: BBox) -> bool:
        return self.x0 <= other.x1 and other.x0 <= self.x1 and self.y0 <= other.y1 and other.y0 <= self.y1

    def contains(self, other: BBox) -> bool:
        return self.x0 <= other.x0 and self.y0 <= other.y0 and other.x1 <= self.x1 and other.y1 <= self.y1

    def contains_point(self, x: float, y: float) -> bool:
        return self.x0 <= x <= self.x1 and self.y0 <= y <= self.y1

    def union(self, other: BBox) -> BBox:
        return BBox(min(self.x0, other.x0), min(self.y0, other.y0), max(self.x1, other.x1), max(self.y1, other.y1))

    def grow(self, margin: float) -> BBox:
        return BBox(self.x0 - margin, self.y0 - margin, self.x1 + margin, self.y1 + margin)


def bbox(points: Sequence[float], stride: int = 3) -> BBox:
    """Box of a flat point list (`stride` 3 for x, y, p triplets; 2 for x, y pairs)."""
    xs = points[0::stride]
    ys = points[1::stride]
    if not xs:
        raise ValueError("no points")
    return BBox(min(xs), min(ys), max(xs), max(ys))


def union(boxes: Iterable[BBox]) -> BBox | None:
    out: BBox | None = None
    for b in boxes:
        out = b if out is None else out.union(b)
    return out


def length(points: Sequence[float], stride: int = 3) -> float:
    """Polyline length of a flat point list."""
    total = 0.0
    for i in range(stride, len(points) - 1, stride):
        total += math.hypot(points[i] - points[i - stride], points[i + 1] - points[i + 1 - stride])
    return total


def hit(box: BBox, points: Sequence[float], stride: int = 3) -> bool:
    """Does any vertex of the polyline fall inside `box`? (Eraser and selection use this.)"""
    return any(box.contains_point(points[i], points[i + 1]) for i in range(0, len(points) - 1, stride))


CHAR_WIDTH = 0.6
"""A character's advance, near enough, as a fraction of the font size (widgets' boxes)."""
LINE_HEIGHT = 1.25
"""A text line's height as a multiple of the font size."""
BUTTON_PAD = 0.5
"""A button's padding around its label, as a fraction of the font size (left and right; half of it above and below)."""


def widget_box(type_: str, x: float, y: float, text: str, size: float) -> BBox:
    """The box a widget covers, estimated from its text (no font at hand): (x, y) is its top-left
    corner; a text's lines are `size` high each (times LINE_HEIGHT), a button is its label with
    BUTTON_PAD around it. Box queries and the server-side renderer's frame use it; drawing it
    measures with its font."""
    lines = text.split("\n") if type_ == "text" else [text]
    w = max(len(line) for line in lines) * CHAR_WIDTH * size
    h = len(lines) * LINE_HEIGHT * size
    if type_ == "button":
        w, h = w + 2 * BUTTON_PAD * size, h + BUTTON_PAD * size
    return BBox(x, y, x + w, y + h)
