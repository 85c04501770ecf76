"""What waits to fire: one room's changes turned into events, merged per behaviour.

Why its own module: the scheduler (`agent.behaviours.scheduler`) decides WHEN a waiting behaviour
fires; this decides WHAT waits. The peer's document reports strokes drawn and erased (with their
transaction origin), chat lines and presence; `Intake` turns each into an event for every active
behaviour whose triggers match (never for the behaviour whose own write it was), and merges the
events a behaviour has not fired on yet into one `Pending`: the latest event's type, time and
actor, the weakest role among them, the deepest chain depth, the strokes (at most
`EVENT_STROKES`, the rest counted as dropped) and erased ids (at most `MAX_ERASED`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from agent.behaviours.actors import Actors
from agent.behaviours.model import Behaviour, FiredEvent
from agent.behaviours.store import BehaviourStore
from agent.contract.events import EVENT_STROKES, EventType, MessageView, PressedWidget
from canvas import Message, Stroke, now_ms
from common.actor import Actor, Role, weakest

log = logging.getLogger("inhabit.agent")

MAX_ERASED = 1000


@dataclass
class Pending:
    """The events waiting for one behaviour, merged into its next firing."""

    type: EventType
    t: int
    actor: Actor | None
    role: Role = "edit"
    """The weakest role among the merged events' actors: a viewer among them makes the firing a viewer's."""
    since: float = field(default_factory=time.perf_counter)
    count: int = 0
    depth: int = 0
    strokes: dict[str, None] = field(default_factory=dict)
    erased: list[str] = field(default_factory=list)
    message: MessageView | None = None
    widget: PressedWidget | None = None
    dropped: int = 0

    def event(self) -> FiredEvent:
        return FiredEvent(type=self.type, t=self.t, by=self.actor.name if self.actor else None, actor=self.actor, strokes=list(self.strokes), erased=self.erased, message=self.message,
                          widget=self.widget, count=self.count, dropped=self.dropped)


class Intake:
    """One room's waiting events: behaviour id -> its `Pending`; `wake` is called whenever one is added."""

    def __init__(self, room: str, store: BehaviourStore, actors: Actors, wake: Callable[[], None]) -> None:
        self.room, self.store, self.actors, self._wake = room, store, actors, wake
        self.pending: dict[str, Pending] = {}

    def on_strokes(self, added: list[Stroke], removed: list[str], origin: Any) -> None:
        """The room's strokes changed (`RoomView.on_change`)."""
        try:
            writer = origin[1] if isinstance(origin, tuple) and len(origin) == 3 and origin[0] == "behaviour" else None
            now = now_ms()
            for s in added:
                self.offer("stroke", now, self.actors.of_stroke(s), self.actors.depth_of(s.behaviour, s.run), s.behaviour, stroke=s.id)
            if removed:
                for p in self.pending.values():
                    for i in removed:
                        p.strokes.pop(i, None)
                run = origin[2] if writer else None
                self.offer("erase", now, self.actors.of_erase(writer, run), self.actors.depth_of(writer, run), writer, erased=removed)
        except Exception:
            log.exception("room %s: reading a strokes change for behaviours", self.room)

    def on_messages(self, event: Any) -> None:
        """Lines were added to the chat (the messages array's observer)."""
        try:
            for part in event.delta:
                for item in part.get("insert") or ():
                    try:
                        m = Message.model_validate(item)
                    except (ValidationError, TypeError):
                        continue
                    view = MessageView(author=m.author, kind=m.kind, text=m.text, t=m.t)
                    self.offer("message", now_ms(), self.actors.of_message(m), self.actors.depth_of(m.behaviour, m.run), m.behaviour,
                               message=view)
        except Exception:
            log.exception("room %s: reading a chat change for behaviours", self.room)

    def on_presence(self, joined: dict[int, dict[str, Any]], left: dict[int, dict[str, Any]]) -> None:
        """People joined or left (presence client id -> their state)."""
        for cid, st in joined.items():
            self.offer("join", now_ms(), self.actors.joined(cid, st), 0, None)
        for cid, st in left.items():
            self.offer("leave", now_ms(), self.actors.left(cid, st), 0, None)

    def offer(self, kind: EventType, t: int, actor: Actor | None, depth: int, writer: str | None, *, stroke: str | None = None,
              erased: list[str] | None = None, message: MessageView | None = None) -> None:
        """An event for every active behaviour that reacts to `kind`, except `writer` (whose own write it was)."""
        for b in self.store.list(self.room):
            if b.status == "active" and b.id != writer and kind in b.on:
                self.add(b, kind, t, actor, depth, stroke=stroke, erased=erased, message=message)

    def add(self, b: Behaviour, kind: EventType, t: int, actor: Actor | None, depth: int, *, stroke: str | None = None,
            erased: list[str] | None = None, message: MessageView | None = None, widget: PressedWidget | None = None,
            role: Role | None = None) -> None:
        """An event for `b`, merged into what waits for it. `role`: the role the event counts with
        for the firing's grant, when not its actor's."""
        p = self.pending.get(b.id)
        if p is None:
            p = self.pending[b.id] = Pending(type=kind, t=t, actor=actor)
        p.type, p.t, p.actor = kind, t, actor
        if actor is not None:
            p.role = weakest(p.role, role or actor.role)
        p.count += 1
        p.depth = max(p.depth, depth)
        if stroke is not None:
            if len(p.strokes) < EVENT_STROKES:
                p.strokes[stroke] = None
            else:
                p.dropped += 1
        if erased:
            p.erased.extend(erased[: MAX_ERASED - len(p.erased)])
        if message is not None:
            p.message = message
        if widget is not None:
            p.widget = widget
        self._wake()
