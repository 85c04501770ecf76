"""HTTP for behaviours: people see them, pause, resume and remove them, and undo a firing.

    GET    /rooms/{name}/behaviours                       list (view token)
    GET    /rooms/{name}/behaviours/{id}                  one, with its code and recent firings (view token)
    POST   /rooms/{name}/behaviours/{id}/pause | /resume  (edit token)
    DELETE /rooms/{name}/behaviours/{id}                  (edit token)
    POST   /rooms/{name}/behaviours/{id}/firings/{firing}/undo   erase what one firing drew (edit token)

Payloads are defined once in `agent/behaviours/model.py` (the browser's types are generated from them).

A change is a `BehaviourChange`, carried out by `perform` where the room's behaviours are held:
here on one node; in cluster mode on the node holding the room's agent, to which the plugin's
`dispatch` forwards it (reading is answered by any node, from the shared records).
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from agent.behaviours.installs import InstallRequest
from agent.behaviours.model import Behaviour, BehaviourDetail, BehaviourList, BehaviourRemoved
from agent.behaviours.scheduler import Hosting
from agent.runs.http import UndoResult
from canvas import now_ms
from common.access import room_of
from common.actor import Actor
from common.http import ApiError, error_response

FIRINGS_SHOWN = 20


def _json(model: Any) -> Response:
    return Response(model.model_dump_json(), media_type="application/json")


class BehaviourChange(BaseModel):
    """A change a person asked of one behaviour (authorized already, by the node that took it), or
    an install an MCP client asked for (`install`; `id` is then the behaviour's name)."""

    op: Literal["pause", "resume", "remove", "undo", "install", "press"]
    room: str
    id: str
    """The behaviour's id (a press: the button's id)."""
    by: str
    firing: str | None = None
    install: InstallRequest | None = None
    actor: Actor | None = None
    """A press: who pressed (their link's id, label and role)."""


class Outcome(BaseModel):
    """What a change answers: the HTTP status and JSON body."""

    status: int
    body: str

    @classmethod
    def of(cls, model: BaseModel, status: int = 200) -> Outcome:
        return cls(status=status, body=model.model_dump_json(exclude_none=True))

    def response(self) -> Response:
        return Response(self.body, status_code=self.status, media_type="application/json")


def _refused(status: int, msg: str) -> Outcome:
    return Outcome.of(ApiError(error=msg), status)


class FiringUndoer(Protocol):
    """What undoing a firing needs of the room's agent peer (`agent.hosting.peer.AgentPeer`)."""

    def undo_firing(self, b: Behaviour, firing_id: str) -> list[str]: ...


class Agent(Protocol):
    """What the routes need of the agent (`agent.plugin.AgentPlugin`)."""

    @property
    def hosting(self) -> Hosting:
        """The behaviours (once the plugin has started)."""
        ...

    async def resident(self, room: str) -> FiringUndoer:
        """The room's agent peer, brought here (to undo a firing)."""
        ...

    async def dispatch(self, change: BehaviourChange) -> Outcome:
        """Carry `change` out where the room's behaviours are held (`perform` there)."""
        ...


class BehaviourRoutes:
    """The routes over the agent's behaviours; changes are dispatched where they are held."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        base = "/rooms/{name}/behaviours"
        self.routes: list[BaseRoute] = [
            Route(base, self.list, methods=["GET"]),
            Route(base + "/{id}", self.get, methods=["GET"]),
            Route(base + "/{id}", self.remove, methods=["DELETE"]),
            Route(base + "/{id}/pause", self.pause, methods=["POST"]),
            Route(base + "/{id}/resume", self.resume, methods=["POST"]),
            Route(base + "/{id}/firings/{firing}/undo", self.undo, methods=["POST"]),
        ]

    @property
    def h(self) -> Hosting:
        return self.agent.hosting

    # reading: any node ----------------------------------------------------------------

    async def list(self, request: Request) -> Response:
        room, _ = room_of(request)
        try:
            behaviours = await self.h.store.view(room)
        except Exception as e:  # cluster mode: PostgreSQL away
            return error_response(503, f"behaviours cannot be read now ({type(e).__name__}); try again shortly")
        return _json(BehaviourList(behaviours=[b.summary() for b in behaviours]))

    async def get(self, request: Request) -> Response:
        room, _ = room_of(request)
        try:
            b = next((b for b in await self.h.store.view(room) if b.id == request.path_params["id"]), None)
            if b is None:
                return error_response(404, "no such behaviour in this room")
            firings = await self.h.store.firings(b, FIRINGS_SHOWN)
        except Exception as e:
            return error_response(503, f"behaviours cannot be read now ({type(e).__name__}); try again shortly")
        return _json(BehaviourDetail(behaviour=b.summary(), code=b.code, firings=firings))

    # changing: where the room's behaviours are held ---------------------------------------

    async def pause(self, request: Request) -> Response:
        return await self._change(request, "pause")

    async def resume(self, request: Request) -> Response:
        return await self._change(request, "resume")

    async def remove(self, request: Request) -> Response:
        return await self._change(request, "remove")

    async def undo(self, request: Request) -> Response:
        return await self._change(request, "undo")

    async def _change(self, request: Request, op: Any) -> Response:
        room, who = room_of(request, "edit")
        change = BehaviourChange(op=op, room=room, id=request.path_params["id"], by=who.label, firing=request.path_params.get("firing"))
        try:
            return (await self.agent.dispatch(change)).response()
        except Exception as e:
            return error_response(503, f"the agent of this room cannot be reached now ({type(e).__name__}); try again shortly")

    async def perform(self, change: BehaviourChange) -> Outcome:
        """Carry out `change` here (this node holds the room's behaviours)."""
        b = self.h.store.get(change.room, change.id)
        if b is None:
            return _refused(404, "no such behaviour in this room")
        if change.op == "pause":
            if b.status == "active":
                self._set(b, "paused", f"paused by {change.by}")
        elif change.op == "resume":
            problem = self.h.grant_problem(b.installer)
            if problem is not None:
                return _refused(409, f"it cannot act any more: {problem}; ask the agent to install it again")
            if b.status == "stopped":
                return _refused(409, "it stopped itself (it said it was done); ask the agent to install it again")
            if b.status in ("paused", "failed"):
                self._set(b, "active", None)
        elif change.op == "remove":
            self.h.cpu.forget(b.id)
            self.h.store.remove(b)
            return Outcome.of(BehaviourRemoved(id=b.id, removed=True))
        else:
            return await self._undo(b, change.firing or "")
        return Outcome.of(b.summary())

    def _set(self, b: Behaviour, status: Any, reason: str | None) -> None:
        b.status, b.reason, b.updated = status, reason, now_ms()
        if status == "active":
            b.failures = 0
        self.h.cpu.forget(b.id)
        self.h.store.save(b)

    async def _undo(self, b: Behaviour, firing_id: str) -> Outcome:
        firing = await self.h.store.firing(firing_id)
        if firing is None or firing.behaviour != b.id:
            return _refused(404, "no such firing of this behaviour (only the most recent ones are kept)")
        try:
            peer = await self.agent.resident(b.room)
        except Exception as e:
            return _refused(503, f"the agent cannot join this room right now ({type(e).__name__}); try again shortly")
        erased = peer.undo_firing(b, firing.id)
        firing.undone = True
        self.h.store.save_firing(firing)
        if b.last is not None and b.last.id == firing.id:
            b.last.undone = True
            self.h.store.save(b)
        return Outcome.of(UndoResult(run=firing.id, erased=erased))
