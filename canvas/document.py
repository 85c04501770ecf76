"""Typed access to a room's pycrdt document, validated against `canvas.schema`.

Used by the server (HTTP reads), the headless client and the agent. Invalid entries written
by some other peer are skipped on read, never raised: one bad stroke must not blind a reader
to the rest of the room.
"""

from __future__ import annotations

from collections.abc import Iterable

from pycrdt import Array, Doc, Map
from pydantic import ValidationError

from .schema import MESSAGES, STROKES, WIDGETS, Message, Stroke, Widget


class CanvasDoc:
    """A pycrdt `Doc` seen as a canvas: a map of strokes and a list of chat messages."""

    def __init__(self, doc: Doc | None = None) -> None:
        self.doc = doc if doc is not None else Doc()
        self.strokes_map: Map = self.doc.get(STROKES, type=Map)
        self.messages_array: Array = self.doc.get(MESSAGES, type=Array)
        self.widgets_map: Map = self.doc.get(WIDGETS, type=Map)

    # reading

    def strokes(self) -> list[Stroke]:
        out = []
        for value in self.strokes_map.values():
            stroke = _parse(Stroke, value)
            if stroke is not None:
                out.append(stroke)
        out.sort(key=lambda s: (s.t, s.id))
        return out

    def stroke(self, stroke_id: str) -> Stroke | None:
        value = self.strokes_map.get(stroke_id)
        return _parse(Stroke, value) if value is not None else None

    def stroke_ids(self) -> list[str]:
        return list(self.strokes_map.keys())

    def widgets(self) -> list[Widget]:
        """The room's text and buttons, oldest first (malformed entries skipped: invalid, or
        filed under a key that is not their id)."""
        out = [w for w in (_parse_widget(k, v) for k, v in self.widgets_map.items()) if w is not None]
        out.sort(key=lambda w: (w.t, w.id))
        return out

    def widget(self, widget_id: str) -> Widget | None:
        return _parse_widget(widget_id, self.widgets_map.get(widget_id))

    def messages(self) -> list[Message]:
        return [m for m in (_parse(Message, v) for v in self.messages_array) if m is not None]

    # writing: each call is one transaction, so peers see it as one update

    def add_strokes(self, strokes: Iterable[Stroke], origin: object = None) -> None:
        with self.doc.transaction(origin=origin):
            for s in strokes:
                self.strokes_map[s.id] = s.to_doc()

    def put_widgets(self, widgets: Iterable[Widget], origin: object = None) -> None:
        """Place (or replace: an update is a new version of the whole object) widgets, one transaction."""
        with self.doc.transaction(origin=origin):
            for w in widgets:
                self.widgets_map[w.id] = w.to_doc()

    def erase(self, ids: Iterable[str], origin: object = None) -> int:
        """Remove strokes and widgets by id (one transaction); how many were there."""
        n = 0
        with self.doc.transaction(origin=origin):
            for i in ids:
                if i in self.strokes_map:
                    del self.strokes_map[i]
                    n += 1
                elif i in self.widgets_map:
                    del self.widgets_map[i]
                    n += 1
        return n

    def post(self, message: Message, origin: object = None) -> None:
        with self.doc.transaction(origin=origin):
            self.messages_array.append(message.to_doc())

    def apply(self, adds: Iterable[Stroke] = (), erases: Iterable[str] = (), messages: Iterable[Message] = (), origin: object = None) -> None:
        """Apply a batch of changes as ONE transaction (an agent run's writes land this way)."""
        with self.doc.transaction(origin=origin):
            for s in adds:
                self.strokes_map[s.id] = s.to_doc()
            for i in erases:
                if i in self.strokes_map:
                    del self.strokes_map[i]
            for m in messages:
                self.messages_array.append(m.to_doc())


def _parse_widget(key: str, value: object) -> Widget | None:
    """A widget entry, if it is valid and filed under its own id (a peer cannot make one widget
    answer for another's key)."""
    widget = _parse(Widget, value)
    return widget if widget is not None and widget.id == key else None


def _parse(model, value):  # type: ignore[no-untyped-def]
    if not isinstance(value, dict):
        return None
    try:
        return model.model_validate(value)
    except ValidationError:
        return None
