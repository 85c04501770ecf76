"""Who wrote each recent chat line, and nobody passes for the agent.

Why here, in the server: a chat line or a presence state says whatever its peer wrote, so
`kind: "agent"` or a `run` id proves nothing; only the server knows which connection wrote
what and which connections are its own (`server.vouch`). Three rules, applied where a peer's
frame is applied (`server.room.Room`), before anybody sees it:

- presence: a state whose `user.kind` claims a server kind ("agent", "mcp") from a connection
  that is not one is rewritten to the connection's own kind ("human"); a server peer's is
  rewritten to the kind and name it was vouched for;
- chat: a line inserted by a connection the server did not make, claiming `kind: "agent"` or a
  `behaviour`, is rewritten in place (same id, text and position) to `kind: "human"` without
  `behaviour`, in a transaction merged into the peer's own update, so every other peer only
  ever sees the rewritten line (a `run` stays: it only names a run whose card shows the
  server's own record of it);
- the writer of each of the last `WRITERS_KEPT` inserted lines is kept (`writer_of`): the
  hosted agent counts a chat prompt against its link's budget with it. In cluster mode the
  writer travels with the update in the room's stream, so the node holding the agent knows it.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any

from pycrdt import Array, Doc

from canvas.schema import MESSAGES
from common.actor import Actor

WRITERS_KEPT = 512
"""Chat lines per room whose writer is remembered (the newest)."""

SERVER_KINDS = frozenset({"agent", "mcp", "behaviour"})
"""Kinds only the server's own peers may claim."""


def vouched_kind(actor: Actor) -> str:
    """The presence kind a connection is shown with: its own, "human" for any link."""
    return actor.kind if actor.kind in SERVER_KINDS else "human"


def presence_as(actor: Actor, state: str) -> str:
    """`state` (one awareness state, JSON) as the server vouches for it (the same string when it
    needs no change). Cheap for the common case: a person's state naming no server kind."""
    server = actor.kind in SERVER_KINDS
    if not server and "\\" not in state and not any(k in state for k in SERVER_KINDS):
        return state
    try:
        value = json.loads(state)
    except ValueError:
        return state
    user = value.get("user") if isinstance(value, dict) else None
    if not isinstance(user, dict):
        return state
    kind = user.get("kind")
    if server:
        if kind == actor.kind and user.get("name") == actor.name:
            return state
        user["kind"], user["name"] = actor.kind, actor.name
    elif kind in SERVER_KINDS or not isinstance(kind, (str, type(None))):
        user["kind"] = "human"
    else:
        return state
    return json.dumps(value, separators=(",", ":"))


def actor_of(writer: str) -> Actor | None:
    """The writer a cluster's stream entry names (None: none, or unreadable)."""
    if not writer:
        return None
    try:
        return Actor.model_validate_json(writer)
    except ValueError:
        return None


def _forged(line: dict[str, Any]) -> bool:
    """Whether a line claims to be the agent's or a behaviour's."""
    return line.get("kind", "human") != "human" or "behaviour" in line


def _inserted(events: list[Any]) -> list[tuple[int, Any]]:
    """(index after the change, value) of every line the array events inserted."""
    out: list[tuple[int, Any]] = []
    for event in events:
        at = 0
        for op in event.delta:
            if "retain" in op:
                at += op["retain"]
            elif "insert" in op:
                for value in op["insert"]:
                    out.append((at, value))
                    at += 1
    return out


class Attribution:
    """One room's chat writers, and the rewriting of forged lines. `watch(doc)` before a
    peer's update is applied, `settle(doc, actor)` after it."""

    def __init__(self) -> None:
        self.writers: OrderedDict[str, Actor] = OrderedDict()
        self.inserted: list[tuple[int, Any]] = []
        """(index, line) of the lines the last settled update inserted (`server.chat` charges them)."""
        self._doc: Doc | None = None
        self._events: list[Any] = []
        self._subscription: Any = None

    def watch(self, doc: Doc) -> None:
        """Observe `doc`'s chat (again if the room's document was replaced); forget old events."""
        if doc is not self._doc:
            self._doc = doc
            self._events = []
            self._subscription = doc.get(MESSAGES, type=Array).observe(self._events.append)  # kept: dropped, it ends
        self._events.clear()

    def writer_of(self, message_id: str) -> Actor | None:
        return self.writers.get(message_id)

    def settle(self, doc: Doc, actor: Actor | None, *, rewrite: bool = True) -> tuple[bytes | None, bool]:
        """After an update by `actor` (None: the server itself, or unknown) was applied: record
        who wrote the lines it inserted and rewrite forged ones (`rewrite=False`: another node
        of the cluster checked them). Returns the rewrite's update (None: none needed) and
        whether the update inserted chat lines at all."""
        if not self._events:
            self.inserted = []
            return None, False
        inserted = self.inserted = _inserted(self._events)
        self._events.clear()
        forged: list[tuple[int, dict[str, Any]]] = []
        for at, line in inserted:
            if not isinstance(line, dict):
                continue
            line_id = line.get("id")
            if actor is not None and isinstance(line_id, str):
                self._record(line_id, actor)
            if rewrite and actor is not None and actor.kind not in SERVER_KINDS and _forged(line):
                forged.append((at, line))
        fix = self._rewrite(doc, forged) if forged else None
        return fix, bool(inserted)

    def _record(self, line_id: str, actor: Actor) -> None:
        writers = self.writers
        writers[line_id] = actor
        writers.move_to_end(line_id)
        while len(writers) > WRITERS_KEPT:
            writers.popitem(last=False)

    def _rewrite(self, doc: Doc, forged: list[tuple[int, dict[str, Any]]]) -> bytes:
        """Rewrite forged lines in place, in one transaction; its update."""
        array = doc.get(MESSAGES, type=Array)
        updates: list[bytes] = []
        sub = doc.observe(lambda event: updates.append(event.update))
        try:
            with doc.transaction():
                for at, line in forged:
                    fixed = {k: v for k, v in line.items() if k != "behaviour"}
                    fixed["kind"] = "human"
                    array.insert(at, fixed)  # before the forged item, then delete it: lines the peer
                    del array[at + 1]  # wrote after it (their origin) stay after the rewritten one
        finally:
            doc.unobserve(sub)
            self._events.clear()  # our own rewrite, not a peer's insert
        return updates[0]  # one transaction: one update
