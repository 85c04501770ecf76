"""A room's widgets (text and buttons, the root `widgets` map), bounded in count and bytes.

Why: any Yjs client may write widgets, and readers only skip malformed entries, so without a
bound one peer could fill the map with thousands of entries that every page draws and every
agent read walks. The bound: at most `MAX_WIDGETS` entries of at most `--widget-doc-bytes`
bytes (each entry's JSON) per room. Applied by `server.room.Room` where a peer's update is
applied, the way `server.chat` bounds a link's over-rate lines: what the update added past the
bound is removed (an entry it replaced gets its previous value back) in a server transaction
merged into the sender's own update, so nobody else ever sees it and the sender's copy gets
the removal. Entries that are shared types (a nested `Y.Map` instead of a plain JSON object:
they could grow inside the entry, past any count) are removed the same way. Each removal is
counted (`inhabit_widgets_refused_total`) and logged with its reason.

The running size is kept in step from the map's change events, which also see the server's own
edits and (cluster mode) other nodes' updates; only a peer's update on this node is checked
(the node that accepts an update bounds it, as with chat).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from pycrdt import Array, Doc, Map, Text, XmlElement, XmlFragment, XmlText

from canvas.schema import MAX_WIDGETS, WIDGETS

from .chat import transact

log = logging.getLogger("inhabit.widgets")

SHARED_TYPES = (Map, Array, Text, XmlElement, XmlFragment, XmlText)
"""Values a widget entry may not be: a widget is a plain JSON object."""


def widget_bytes(value: Any) -> int:
    """What a widget entry costs the document, near enough: its JSON in UTF-8."""
    if isinstance(value, SHARED_TYPES):
        return len(str(value).encode())
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str).encode())


class Change:
    """What one peer's update did to one key: its action and the value before it."""

    __slots__ = ("action", "old", "new")

    def __init__(self, action: str, old: Any, new: Any) -> None:
        self.action, self.old, self.new = action, old, new


class RoomWidgets:
    """One room's widget bound: the entries' sizes kept in step with the document, and the
    check of a peer's update. `watch(doc)` before the update is applied, `settle(doc)` after."""

    def __init__(self, limit_bytes: int, doc: Doc) -> None:
        self.limit_bytes = limit_bytes
        self.sizes: dict[str, int] = {}
        self.bytes = 0
        """Bytes of every entry's JSON, kept in step."""
        self._doc: Doc | None = None
        self._subscription: Any = None
        self._changes: dict[str, Change] | None = None  # while a peer's update is applied
        self.follow(doc)

    def follow(self, doc: Doc) -> None:
        """Keep in step with `doc` (again from scratch if the room's document was replaced)."""
        if doc is self._doc:
            return
        widgets = doc.get(WIDGETS, type=Map)
        self._doc = doc
        self.sizes = {key: widget_bytes(value) for key, value in widgets.items()}
        self.bytes = sum(self.sizes.values())
        self._subscription = widgets.observe(self._on_event)  # kept: dropped, it ends

    @property
    def count(self) -> int:
        return len(self.sizes)

    def over(self) -> bool:
        return self.count > MAX_WIDGETS or self.bytes > self.limit_bytes

    def fit(self, values: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The first of `values` (new entries) that fit the bound now, in order: a restore
        brings back what fits."""
        n, size, out = self.count, self.bytes, []
        for value in values:
            cost = widget_bytes(value)
            if n + 1 > MAX_WIDGETS or size + cost > self.limit_bytes:
                break
            n, size = n + 1, size + cost
            out.append(value)
        return out

    def _on_event(self, event: Any) -> None:
        changes = self._changes
        for key, change in event.keys.items():
            action = change.get("action")
            if action == "delete":
                self.bytes -= self.sizes.pop(key, 0)
            else:
                size = widget_bytes(change.get("newValue"))
                self.bytes += size - self.sizes.get(key, 0)
                self.sizes[key] = size
            if changes is not None:
                first = changes.get(key)  # one update may touch a key twice: keep the value before it
                changes[key] = Change(action, first.old if first is not None else change.get("oldValue"), change.get("newValue"))

    # a peer's update

    def watch(self, doc: Doc) -> None:
        """Record the changes to come (a peer's update)."""
        self.follow(doc)
        self._changes = {}

    def settle(self, doc: Doc, room: str) -> tuple[bytes | None, int]:
        """After the peer's update: undo what it added past the bound (newest first) and the
        shared-type entries it wrote, in one server transaction. Returns its update (None:
        nothing to undo) and how many entries it refused."""
        changes, self._changes = self._changes, None
        if not changes:
            return None, 0
        shared = [k for k, c in changes.items() if c.action != "delete" and isinstance(c.new, SHARED_TYPES)]
        if not shared and not self.over():
            return None, 0
        undo = list(shared)
        count = self.count - sum(1 for k in shared if _gone(changes[k].old))
        size = self.bytes - sum(self.sizes.get(k, 0) for k in shared) + sum(_plain_bytes(changes[k].old) for k in shared)
        candidates = [k for k, c in changes.items() if c.action != "delete" and k not in shared]
        candidates.sort(key=lambda k: (_t(changes[k].new), k))  # the newest go first
        while candidates and (count > MAX_WIDGETS or size > self.limit_bytes):
            key = candidates.pop()
            old = changes[key].old
            size += _plain_bytes(old) - self.sizes.get(key, 0)
            count -= _gone(old)
            undo.append(key)
        widgets = doc.get(WIDGETS, type=Map)

        def revert() -> None:
            for key in undo:
                c = changes[key]
                if not _gone(c.old):
                    widgets[key] = c.old  # a replaced entry gets its value back
                elif key in widgets:
                    del widgets[key]
        fix = transact(doc, revert)
        log.info("room %s: removed %d widget(s) a peer wrote: a room holds at most %d widgets of %d bytes (now %d, %d bytes)%s",
                 room, len(undo), MAX_WIDGETS, self.limit_bytes, self.count, self.bytes,
                 f"; {len(shared)} not a plain JSON object" if shared else "")
        return fix, len(undo)


def _gone(old: Any) -> bool:
    """Whether an entry's earlier value is not put back when the peer's change is undone (there
    was none, or it was a shared type): then undoing the change removes the entry."""
    return old is None or isinstance(old, SHARED_TYPES)


def _plain_bytes(old: Any) -> int:
    """What an entry's earlier value costs once it is put back."""
    return 0 if _gone(old) else widget_bytes(old)


def _t(value: Any) -> float:
    """A widget's time (when it was placed), for ordering; 0 when it has none."""
    t = value.get("t") if isinstance(value, dict) else None
    return float(t) if isinstance(t, (int, float)) else 0.0
