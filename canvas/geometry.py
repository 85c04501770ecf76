"""Plane geometry over strokes: boxes, lengths, hit-testing. Pure functions, no document."""

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
