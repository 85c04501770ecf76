"""Who caused an event a behaviour sees, as the agent knows it: never as a peer wrote it.

Why its own module: a firing acts with the intersection of its installer's role and the role of
whoever caused it (`agent.contract.events.firing_grant`), so the role behind every event must
come from what the server and the agent know, not from a stroke's `author` or a chat line's
`kind`. What each source is worth:

- strokes and erases: only edit links and the server's own peers can change the document (a view
  link's connection is read-only), so a person's write is an editor's. Writes tagged with a
  firing or a model run carry the role noted when that firing or run wrote (a behaviour's writes
  caused by a viewer stay a viewer's, so the chain's intersection holds past one behaviour);
- chat lines: the lines the hosted peer posts itself are vouched for when posted (an HTTP
  prompt's echo carries the prompt's link and grant, a run's status lines the run's); a line
  tagged with a known run counts as that run's; any other line was written by an edit
  connection (or, once the server says who wrote it, `writer`, that link);
- presence: the server says whose connection holds a presence client id (`presence`); a join
  it cannot vouch for counts as a viewer's, and a leave is whoever joined with that id.

It also keeps how deep in a chain of behaviours each firing's writes are (the loop guard).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from canvas import Message, Stroke
from common.actor import Actor

KEPT = 1024
"""Firings, runs, vouched lines and presence ids remembered, each (bounded memory)."""

SOMEONE = "someone"


def _nobody(_: Any) -> None:
    return None


def _trim(d: OrderedDict[Any, Any]) -> None:
    while len(d) > KEPT:
        d.popitem(last=False)


class Actors:
    """One room's record of who is behind what the agent's peer sees."""

    def __init__(self, *, run_actor: Callable[[str], Actor | None] = _nobody, presence: Callable[[int], Actor | None] = _nobody,
                 writer: Callable[[str], Actor | None] = _nobody, behaviour_name: Callable[[str], str | None] = _nobody) -> None:
        self._run_actor = run_actor
        """A model run of this room (the run store knows its link's grant), or None."""
        self._presence = presence
        """The server's word on who holds a presence client id now (None: it cannot say)."""
        self._writer = writer
        """The server's word on which link wrote a chat line (None: it cannot say)."""
        self._behaviour_name = behaviour_name
        self._chain: OrderedDict[str, tuple[int, Actor]] = OrderedDict()  # firing or run id -> (depth, who its writes are)
        self._vouched: OrderedDict[str, Actor] = OrderedDict()  # chat line id -> who (lines the peer posted itself)
        self._present: OrderedDict[int, Actor] = OrderedDict()  # presence client id -> who joined with it

    # what the peer and the scheduler tell it ----------------------------------------------

    def note(self, run_id: str, depth: int, actor: Actor) -> None:
        """Writes tagged with `run_id` are `depth` deep in a chain of behaviours and are `actor`'s."""
        self._chain[run_id] = (depth, actor)
        _trim(self._chain)

    def vouch(self, message_id: str, actor: Actor) -> None:
        """A chat line the peer is about to post is `actor`'s (call before posting it)."""
        self._vouched[message_id] = actor
        _trim(self._vouched)

    # what it answers -----------------------------------------------------------------------

    def depth_of(self, behaviour: str | None, run: str | None) -> int:
        """How deep in a chain of behaviours a write is: 0 for people and model runs, the writing firing's depth otherwise."""
        if behaviour is None:
            return 0
        noted = self._chain.get(run or "")
        return noted[0] if noted is not None else 1

    def of_tagged(self, behaviour: str | None, run: str | None) -> Actor | None:
        """Who a write tagged with a behaviour or a run is (None: tagged with neither)."""
        noted = self._chain.get(run or "")
        if noted is not None:
            return noted[1]
        if behaviour is not None:
            return Actor(id=behaviour, name=self._behaviour_name(behaviour) or behaviour, kind="behaviour", role="edit")
        return self._run_actor(run) if run else None

    def of_stroke(self, s: Stroke) -> Actor:
        return self.of_tagged(s.behaviour, s.run) or Actor(name=s.author, role="edit")

    def of_erase(self, behaviour: str | None, run: str | None) -> Actor:
        return self.of_tagged(behaviour, run) or Actor(name=SOMEONE, role="edit")

    def of_message(self, m: Message) -> Actor:
        vouched = self._vouched.get(m.id)
        if vouched is not None:
            return vouched
        tagged = self.of_tagged(m.behaviour, m.run)
        if tagged is not None:
            return tagged
        return self._writer(m.id) or Actor(name=m.author, role="edit")

    def joined(self, client_id: int, state: Any) -> Actor:
        known = self._presence(client_id)
        actor = (known.model_copy(update={"name": _name(state) or known.name}) if known is not None
                 else Actor(name=_name(state) or SOMEONE, role="view"))
        self._present[client_id] = actor
        _trim(self._present)
        return actor

    def left(self, client_id: int, state: Any) -> Actor:
        return self._present.pop(client_id, None) or Actor(name=_name(state) or SOMEONE, role="view")


def _name(state: Any) -> str | None:
    user = state.get("user") if isinstance(state, dict) else None
    name = user.get("name") if isinstance(user, dict) else None
    return str(name)[:80] if name else None
