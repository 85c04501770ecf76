"""Server plugin: HTTP prompts, run records and undo, with one hosted agent peer per room.

Why hosted peers connect over the websocket (to the server's own URL, with an internally
minted edit token) instead of touching room objects: the agent stays a peer like any other,
so this plugin depends only on the public contracts (`app.state.access`, `app.state.config`,
`server.client.CanvasClient`), never on room internals.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from agent.codemode import CodeMode
from agent.peer import AgentPeer, addressed
from agent.runs import RunStore
from agent.runstore import RunDB
from server.access import role_of

log = logging.getLogger("inhabit.agent")

MAX_PROMPT = 4_000


def _err(status: int, msg: str) -> JSONResponse:
    return JSONResponse({"error": msg}, status_code=status)


class AgentPlugin:
    """`routes` + `startup`/`shutdown`, as `server.app.create_app(config, plugins)` expects."""

    def __init__(self, config: Any = None, *, name: str = "agent", idle_s: float | None = None) -> None:
        self.config = config
        self.name = name
        self.idle_s = idle_s if idle_s is not None else float(os.environ.get("INHABIT_AGENT_IDLE_S") or 300)
        """A hosted peer leaves its room after this long without prompts, so the room can unload."""
        self._reaper: asyncio.Task[None] | None = None
        self.runs = RunStore()
        self.peers: dict[str, AgentPeer] = {}
        self._starting: dict[str, asyncio.Lock] = {}
        self._code_mode: CodeMode | None = None
        self.app: Any = None
        self.routes: list[BaseRoute] = [
            Route("/rooms/{name}/prompts", self.prompt, methods=["POST"]),
            Route("/rooms/{name}/runs", self.list_runs, methods=["GET"]),
            Route("/rooms/{name}/runs/{run}", self.get_run, methods=["GET"]),
            Route("/rooms/{name}/runs/{run}/undo", self.undo, methods=["POST"]),
        ]

    async def startup(self, app: Any) -> None:
        self.app = app
        if self.config is None:
            self.config = app.state.config
        data = getattr(self.config, "data", None)
        if data is not None and self.runs.db is None:  # run records survive restarts (agent/runstore.py)
            self.runs = RunStore(self.runs.per_room, db=await asyncio.to_thread(RunDB, Path(data) / "runs.sqlite3", self.runs.per_room))
        self._reaper = asyncio.create_task(self._reap())

    async def _reap(self) -> None:
        while True:
            await asyncio.sleep(min(30.0, self.idle_s / 2))
            for room, peer in list(self.peers.items()):
                if peer.idle_for() > self.idle_s:
                    async with self._starting.setdefault(room, asyncio.Lock()):
                        if self.peers.get(room) is peer and peer.idle_for() > self.idle_s:
                            del self.peers[room]
                            await peer.close()

    async def shutdown(self, app: Any) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
        peers, self.peers = list(self.peers.values()), {}
        await asyncio.gather(*(p.close() for p in peers), return_exceptions=True)
        self.runs.close()  # writes what is pending; blocking, but only once at shutdown

    # helpers ---------------------------------------------------------------------------

    def _ws_base(self, request: Request) -> str:
        cfg = request.app.state.config
        host = "127.0.0.1" if cfg.host in ("0.0.0.0", "::", "", "localhost") else cfg.host
        port = cfg.port or (request.url.port or 80)
        return f"ws://{host}:{port}/rooms"

    async def peer(self, request: Request, room: str) -> AgentPeer:
        """The room's hosted agent, started (and connected) on first use."""
        lock = self._starting.setdefault(room, asyncio.Lock())
        async with lock:
            peer = self.peers.get(room)
            if peer is None:
                if self._code_mode is None:
                    self._code_mode = CodeMode()
                state = request.app.state
                token = None if getattr(state.config, "open", False) else state.access.mint(room, "edit")
                peer = await AgentPeer(self._ws_base(request), room, token=token, name=self.name, runs=self.runs, code_mode=self._code_mode).start()
                self.peers[room] = peer
            return peer

    # routes ----------------------------------------------------------------------------

    async def prompt(self, request: Request) -> JSONResponse:
        room = request.path_params["name"]
        role = role_of(request, room)
        if role is None:
            return _err(401, "a view or edit token for this room is required")
        try:
            body = await request.json()
        except Exception:  # noqa: BLE001
            return _err(400, 'body must be JSON: {"text": "..."}')
        text = body.get("text") if isinstance(body, dict) else None
        if not isinstance(text, str) or not text.strip():
            return _err(400, 'body must be JSON: {"text": "..."}')
        if len(text) > MAX_PROMPT:
            return _err(413, f"prompt longer than {MAX_PROMPT} characters")
        author = body.get("author") if isinstance(body.get("author"), str) else "http"
        try:
            peer = await self.peer(request, room)
        except Exception as e:  # noqa: BLE001
            log.exception("starting agent peer for %s", room)
            return _err(503, f"could not start the agent for this room: {type(e).__name__}: {e}")
        text = addressed(text, self.name) or text.strip()
        run = peer.submit(text, author=author[:80], grant="write" if role == "edit" else "read", source="http")
        return JSONResponse({"run": run.id, "grant": run.grant}, status_code=202)

    async def list_runs(self, request: Request) -> JSONResponse:
        room = request.path_params["name"]
        if role_of(request, room) is None:
            return _err(401, "a view or edit token for this room is required")
        return JSONResponse({"runs": [r.summary() for r in self.runs.list(room)]})

    async def get_run(self, request: Request) -> JSONResponse:
        room = request.path_params["name"]
        if role_of(request, room) is None:
            return _err(401, "a view or edit token for this room is required")
        run = self.runs.get(room, request.path_params["run"])
        if run is None:
            return _err(404, "no such run in this room")
        return JSONResponse(run.model_dump())

    async def undo(self, request: Request) -> JSONResponse:
        room = request.path_params["name"]
        if role_of(request, room) != "edit":
            return _err(403, "undo needs an edit token for this room")
        run = self.runs.get(room, request.path_params["run"])
        if run is None:
            return _err(404, "no such run in this room")
        peer = await self.peer(request, room)
        erased = peer.undo(run.id)
        return JSONResponse({"run": run.id, "erased": erased})
