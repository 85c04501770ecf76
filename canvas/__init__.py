"""The canvas: stroke model, document schema and geometry, shared by server, agent and tests."""

from .document import CanvasDoc
from .geometry import BBox, bbox, hit, length, union
from .schema import MESSAGES, STROKES, WIDGETS, Message, Stroke, Widget, new_id, now_ms

__all__ = ["BBox", "CanvasDoc", "MESSAGES", "Message", "STROKES", "Stroke", "WIDGETS", "Widget", "bbox", "hit", "length", "new_id", "now_ms",
           "union"]
