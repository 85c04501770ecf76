"""Presses: a person's click on a button fires the behaviour that made it.

    POST /rooms/{name}/widgets/{id}/press    edit links; view links only on a button made with anyone: true
                                             -> 202 {"ok": true}

Why a route of the agent's and not a document write: a press is not a change of the room but a
request to a behaviour, with who asked attached as the server knows it (the link's token), so it
is authorized, rate-limited and counted here, then carried out where the room's behaviours are
held, like a pause or a remove (`BehaviourChange` op "press", through the plugin's `dispatch`:
on this node, or in cluster mode handed to the node holding the room's agent). There the button
is read from the agent peer's copy of the room and the press becomes a "press" event of the
button's behaviour (`RoomBehaviours.press`), within the usual firing rules (merging, rate, CPU
budget, loop guard, failures).

Authority: a press acts with at most the presser's role (`firing_grant`, the event's actor is
the presser), except on a button made with `anyone: true`, whose press by a view link acts with
the installer's grant: the button's visible opt-in (the page marks such buttons).

Answers: 202 accepted; 401/403 the token (403: a view link on a button without `anyone`); 404 no
such widget; 409 a text, a button of no behaviour, or of one removed, paused or not listening
to "press" (the body says which); 429 past `--presses-per-minute` per link or
`--button-presses-per-minute` per button, with Retry-After; 503 the room's agent cannot be
reached now.
"""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from agent.behaviours.routes import BehaviourChange, Outcome
from agent.behaviours.scheduler import Hosting, RoomBehaviours
from agent.behaviours.settings import BehaviourLimits
from agent.contract.events import PressedWidget, describe_triggers
from agent.limits.admission import RateLimiter
from canvas import CanvasDoc
from common.access import room_of
from common.actor import Actor
from common.http import ApiError, Refusal, error_response


class PressAccepted(BaseModel):
    """`POST /rooms/{name}/widgets/{id}/press`: the press was taken; the behaviour fires (its writes arrive in the room)."""

    ok: bool = True


class Pressable(Protocol):
    """What a press needs of the room's agent peer (`agent.hosting.peer.AgentPeer`)."""

    @property
    def doc(self) -> CanvasDoc: ...

    behaviours: RoomBehaviours | None


class Agent(Protocol):
    """What presses need of the agent (`agent.plugin.AgentPlugin`)."""

    @property
    def hosting(self) -> Hosting: ...

    async def resident(self, room: str) -> Pressable:
        """The room's agent peer, brought here."""
        ...

    async def dispatch(self, change: BehaviourChange) -> Outcome:
        """Carry `change` out where the room's behaviours are held (`perform` there)."""
        ...


def _refused(status: int, msg: str) -> Outcome:
    return Outcome.of(ApiError(error=msg), status)


class Presses:
    """The press route, its rate limits and counts, and `perform` where the behaviours are held."""

    def __init__(self, agent: Agent, limits: BehaviourLimits) -> None:
        self.agent = agent
        self.by_link = RateLimiter(limits.presses_per_minute)
        self.by_button = RateLimiter(limits.button_presses_per_minute)
        self.total = 0
        """Presses asked of this node (refused ones too)."""
        self.refused = 0
        self.routes: list[BaseRoute] = [Route("/rooms/{name}/widgets/{id}/press", self.press, methods=["POST"])]

    def gauges(self) -> dict[str, tuple[float, str]]:
        return {"presses_total": (self.total, "Button presses asked of this node (refused ones too)."),
                "presses_refused_total": (self.refused, "Button presses refused (token, rate, no such button, behaviour not answering)."),
                "press_rate_keys": (len(self.by_link) + len(self.by_button), "Press rate-limit buckets held in memory.")}

    async def press(self, request: Request) -> Response:
        self.total += 1
        try:
            room, who = room_of(request, "view")
        except Refusal:
            self.refused += 1
            raise
        widget = request.path_params["id"]
        link = who.id if who.id != "open" or request.client is None else f"open@{request.client.host}"  # auth off: by address
        wait = max(self.by_link.wait(link), self.by_button.wait((room, widget)))
        if wait > 0:
            self.refused += 1
            return error_response(429, f"too many presses: at most {int(self.by_link.capacity)} per minute per link and "
                                       f"{int(self.by_button.capacity)} per button", retry_after=wait)
        self.by_link.take(link)
        self.by_button.take((room, widget))
        change = BehaviourChange(op="press", room=room, id=widget, by=who.label, actor=Actor(id=who.id, name=who.label, role=who.role))
        try:
            out = await self.agent.dispatch(change)
        except Exception as e:
            self.refused += 1
            return error_response(503, f"the agent of this room cannot be reached now ({type(e).__name__}); try again shortly")
        if out.status != 202:
            self.refused += 1
        return out.response()

    async def perform(self, change: BehaviourChange) -> Outcome:
        """Carry out a press here (this node holds the room's behaviours): the button is read from
        the room's agent peer, brought here if it is not."""
        actor = change.actor or Actor(name=change.by, role="view")
        try:
            peer = await self.agent.resident(change.room)
        except Exception as e:
            return _refused(503, f"the agent cannot join this room right now ({type(e).__name__}); try again shortly")
        w = peer.doc.widget(change.id)
        if w is None:
            return _refused(404, "no such text or button in this room")
        if w.type != "button":
            return _refused(409, "this is a text, not a button: nothing answers a press on it")
        if not actor.may_edit and not w.anyone:
            return _refused(403, "only edit links may press this button (its behaviour did not make it with anyone: true)")
        b = self.agent.hosting.store.get(change.room, w.behaviour) if w.behaviour else None
        if w.behaviour is None:
            return _refused(409, "this button belongs to no behaviour: nothing answers a press on it")
        if b is None:
            return _refused(409, "the behaviour that made this button was removed: nothing answers a press on it")
        if b.status != "active":
            why = f": {b.reason}" if b.reason else ""
            return _refused(409, f"the behaviour “{b.name}” that answers this button is {b.status}{why}; an editor can resume it in the panel")
        if "press" not in b.on:
            return _refused(409, f"the behaviour “{b.name}” does not listen to presses (it runs on {describe_triggers(b.on)})")
        if peer.behaviours is None:
            return _refused(503, "this room's agent hosts no behaviours")
        peer.behaviours.press(b, PressedWidget(id=w.id, type=w.type, text=w.text, x=w.x, y=w.y), actor, anyone=w.anyone)
        return Outcome.of(PressAccepted(), 202)
