"""The canvas: stroke model, document schema and geometry, shared by server, agent and tests."""

from .document import CanvasDoc
from .geometry import BBox, bbox, hit, length, union
from .schema import MESSAGES, STROKES, Message, Stroke, new_id, now_ms

__all__ = ["BBox", "CanvasDoc", "MESSAGES", "Message", "STROKES", "Stroke", "bbox", "hit", "length", "new_id", "now_ms", "union"]
