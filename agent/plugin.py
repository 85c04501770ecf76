"""Server plugin: HTTP prompts, run records and undo, with one hosted agent peer per room.

Why hosted peers connect over the websocket (to the server's own URL, with an internally
minted edit token) instead of touching room objects: the agent stays a peer like any other,
so this plugin depends only on the `Host` it is handed at start-up (settings and token
authority), the shared token lookup (`common.access`) and the headless client
(`wire.client`), never on room internals.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from agent.codemode import CodeMode
from agent.http import PromptAccepted, PromptRequest, RunList, UndoResult
from agent.loop import ModelSettings
from agent.peer import AgentPeer, addressed
from agent.rundb import RunDB
from agent.runs import RunStore
from common.access import role_of

log = logging.getLogger("inhabit.agent")

MAX_PROMPT = 4_000
RUNS_DB = "runs.sqlite3"


def _err(status: int, msg: str) -> Response:
    return JSONResponse({"error": msg}, status_code=status)


def _json(model: Any, status: int = 200) -> Response:
    return Response(model.model_dump_json(), status_code=status, media_type="application/json")


class AgentPlugin:
    """The agent as a `server.plugin.Plugin`: prompt and run routes, one hosted peer per room."""

    def __init__(self, *, model: ModelSettings | None = None, idle_s: float = 300.0, name: str = "agent") -> None:
        self.name = name
        self.model = model or ModelSettings()
        self.idle_s = idle_s
        """A hosted peer leaves its room after this long without prompts, so the room can unload."""
        self.runs = RunStore()
        self.peers: dict[str, AgentPeer] = {}
        self._starting: dict[str, asyncio.Lock] = {}
        self._code_mode = CodeMode()
        self._reaper: asyncio.Task[None] | None = None
        self._host: Any = None
        self._routes: list[BaseRoute] = [
            Route("/rooms/{name}/prompts", self.prompt, methods=["POST"]),
            Route("/rooms/{name}/runs", self.list_runs, methods=["GET"]),
            Route("/rooms/{name}/runs/{run}", self.get_run, methods=["GET"]),
            Route("/rooms/{name}/runs/{run}/undo", self.undo, methods=["POST"]),
        ]

    # the Plugin interface ----------------------------------------------------------------

    @property
    def routes(self) -> Sequence[BaseRoute]:
        return self._routes

    async def startup(self, host: Any) -> None:
        """`host` is a `server.plugin.Host` (typed loosely: the agent does not import the server)."""
        self._host = host
        db = await asyncio.to_thread(RunDB, host.settings.data / RUNS_DB, self.runs.per_room)
        self.runs = RunStore(self.runs.per_room, db=db)  # run records survive restarts
        self._reaper = asyncio.create_task(self._reap())

    async def shutdown(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
        peers, self.peers = list(self.peers.values()), {}
        await asyncio.gather(*(p.close() for p in peers), return_exceptions=True)
        self.runs.close()  # writes what is pending; blocking, but only once at shutdown
        self._code_mode.close()

    def gauges(self) -> dict[str, tuple[float, str]]:
        return {"agent_peers": (len(self.peers), "Hosted agent peers resident in rooms.")}

    # hosted peers ------------------------------------------------------------------------

    async def _reap(self) -> None:
        while True:
            await asyncio.sleep(min(30.0, self.idle_s / 2))
            for room, peer in list(self.peers.items()):
                if peer.idle_for() > self.idle_s:
                    async with self._starting.setdefault(room, asyncio.Lock()):
                        if self.peers.get(room) is peer and peer.idle_for() > self.idle_s:
                            del self.peers[room]
                            await peer.close()

    async def peer(self, room: str) -> AgentPeer:
        """The room's hosted agent, started (and connected over the websocket) on first use."""
        async with self._starting.setdefault(room, asyncio.Lock()):
            peer = self.peers.get(room)
            if peer is None:
                settings = self._host.settings
                token = None if settings.open else self._host.access.mint(room, "edit")
                peer = AgentPeer(settings.internal_ws, room, token=token, name=self.name, runs=self.runs,
                                 code_mode=self._code_mode, settings=self.model)
                self.peers[room] = await peer.start()
            return peer

    # routes ----------------------------------------------------------------------------

    async def prompt(self, request: Request) -> Response:
        room = request.path_params["name"]
        role = role_of(request, room)
        if role is None:
            return _err(401, "a view or edit token for this room is required")
        try:
            body = PromptRequest.model_validate_json(await request.body())
        except ValueError:
            return _err(400, 'body must be JSON: {"text": "..."}')
        text = body.text
        if not text.strip():
            return _err(400, 'body must be JSON: {"text": "..."}')
        if len(text) > MAX_PROMPT:
            return _err(413, f"prompt longer than {MAX_PROMPT} characters")
        author = body.author or "http"
        try:
            peer = await self.peer(room)
        except Exception as e:
            log.exception("starting agent peer for %s", room)
            return _err(503, f"could not start the agent for this room: {type(e).__name__}: {e}")
        text = addressed(text, self.name) or text.strip()
        run = peer.submit(text, author=author[:80], grant="write" if role == "edit" else "read", source="http")
        return _json(PromptAccepted(run=run.id, grant=run.grant), 202)

    async def list_runs(self, request: Request) -> Response:
        room = request.path_params["name"]
        if role_of(request, room) is None:
            return _err(401, "a view or edit token for this room is required")
        return _json(RunList(runs=[r.summary() for r in self.runs.list(room)]))

    async def get_run(self, request: Request) -> Response:
        room = request.path_params["name"]
        if role_of(request, room) is None:
            return _err(401, "a view or edit token for this room is required")
        run = self.runs.get(room, request.path_params["run"])
        if run is None:
            return _err(404, "no such run in this room")
        return _json(run)

    async def undo(self, request: Request) -> Response:
        room = request.path_params["name"]
        if role_of(request, room) != "edit":
            return _err(403, "undo needs an edit token for this room")
        run = self.runs.get(room, request.path_params["run"])
        if run is None:
            return _err(404, "no such run in this room")
        peer = await self.peer(room)
        return _json(UndoResult(run=run.id, erased=peer.undo(run.id)))
