"""HTTP for behaviours: people see them, pause, resume and remove them, and undo a firing.

    GET    /rooms/{name}/behaviours                       list (view token)
    GET    /rooms/{name}/behaviours/{id}                  one, with its code and recent firings (view token)
    POST   /rooms/{name}/behaviours/{id}/pause | /resume  (edit token)
    DELETE /rooms/{name}/behaviours/{id}                  (edit token)
    POST   /rooms/{name}/behaviours/{id}/firings/{firing}/undo   erase what one firing drew (edit token)

Payloads are defined once in `agent/behaviour.py` (the browser's types are generated from them).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from agent.behaviour import Behaviour, BehaviourDetail, BehaviourList, BehaviourRemoved
from agent.http import ApiError, UndoResult
from agent.peer import AgentPeer
from agent.scheduler import Hosting
from canvas import now_ms
from common.access import Denied, Role, TokenInfo, authorize

FIRINGS_SHOWN = 20


def _err(status: int, msg: str) -> Response:
    return Response(ApiError(error=msg).model_dump_json(exclude_none=True), status_code=status, media_type="application/json")


def _json(model: Any) -> Response:
    return Response(model.model_dump_json(), media_type="application/json")


class BehaviourRoutes:
    """The routes, over the store (`hosting()`, once the plugin has started); `peer(room)` brings
    the room's agent (to undo a firing)."""

    def __init__(self, hosting: Callable[[], Hosting], peer: Callable[[str], Awaitable[AgentPeer]]) -> None:
        self._hosting = hosting
        self._peer = peer
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
        return self._hosting()

    def _find(self, request: Request, need: Role) -> tuple[Behaviour | None, TokenInfo | None, Response | None]:
        room = request.path_params["name"]
        try:
            who = authorize(request, room, need)
        except Denied as e:
            return None, None, _err(e.status, e.message)
        b = self.h.store.get(room, request.path_params.get("id", ""))
        return b, who, None if b is not None else _err(404, "no such behaviour in this room")

    async def list(self, request: Request) -> Response:
        room = request.path_params["name"]
        try:
            authorize(request, room)
        except Denied as e:
            return _err(e.status, e.message)
        return _json(BehaviourList(behaviours=[b.summary() for b in self.h.store.list(room)]))

    async def get(self, request: Request) -> Response:
        b, _, refusal = self._find(request, "view")
        if b is None:
            return refusal  # type: ignore[return-value]
        firings = await self.h.store.firings(b, FIRINGS_SHOWN)
        return _json(BehaviourDetail(behaviour=b.summary(), code=b.code, firings=firings))

    async def pause(self, request: Request) -> Response:
        b, who, refusal = self._find(request, "edit")
        if b is None or who is None:
            return refusal  # type: ignore[return-value]
        if b.status == "active":
            self._set(b, "paused", f"paused by {who.label}")
        return _json(b.summary())

    async def resume(self, request: Request) -> Response:
        b, who, refusal = self._find(request, "edit")
        if b is None or who is None:
            return refusal  # type: ignore[return-value]
        problem = self.h.grant_problem(b.installer)
        if problem is not None:
            return _err(409, f"it cannot act any more: {problem}; ask the agent to install it again")
        if b.status in ("paused", "failed"):
            self._set(b, "active", None)
        elif b.status == "stopped":
            return _err(409, "it stopped itself (it said it was done); ask the agent to install it again")
        return _json(b.summary())

    def _set(self, b: Behaviour, status: Any, reason: str | None) -> None:
        b.status, b.reason, b.updated = status, reason, now_ms()
        if status == "active":
            b.failures = 0
        self.h.store.save(b)

    async def remove(self, request: Request) -> Response:
        b, who, refusal = self._find(request, "edit")
        if b is None:
            return refusal  # type: ignore[return-value]
        self.h.store.remove(b)
        return _json(BehaviourRemoved(id=b.id, removed=True))

    async def undo(self, request: Request) -> Response:
        b, _, refusal = self._find(request, "edit")
        if b is None:
            return refusal  # type: ignore[return-value]
        firing = await self.h.store.firing(request.path_params["firing"])
        if firing is None or firing.behaviour != b.id:
            return _err(404, "no such firing of this behaviour (only the most recent ones are kept)")
        try:
            peer = await self._peer(b.room)
        except Exception as e:
            return _err(503, f"the agent cannot join this room right now ({type(e).__name__}); try again shortly")
        erased = peer.undo_firing(b, firing.id)
        firing.undone = True
        self.h.store.save_firing(firing)
        if b.last is not None and b.last.id == firing.id:
            b.last.undone = True
            self.h.store.save(b)
        return _json(UndoResult(run=firing.id, erased=erased))
