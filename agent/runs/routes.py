"""HTTP for prompts and run records: people ask the agent, follow its runs and undo them.

    POST /rooms/{name}/prompts               {"text": ...}  -> 202 {run, grant} (view token: a read-only run)
    GET  /rooms/{name}/runs[?limit=&before=]  the room's recent runs, summaries, paged (view token)
    GET  /rooms/{name}/runs/{run}            one run: code, calls, strokes, reply (view token)
    POST /rooms/{name}/runs/{run}/undo       erase what one run drew (edit token)

What one token can cost here: prompts per minute per token and per room (viewers only for the
room bound: editors are never refused for viewers' traffic), taken before the prompt goes on
so concurrent requests see them, and given back when the prompt is not taken. The budget
(`agent.limits.budget`) is the same one chat prompts to the hosted agent take from, so a link
has one budget whatever the door; in cluster mode it is in Redis, however many nodes it reaches. Where a prompt runs
and where an undo happens (this node's peer, or in cluster mode the node holding the room's
agent) is the agent's placement (`agent.hosting.placement`), reached through `Agent` below.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from agent.contract.canvas import Grant
from agent.contract.events import Installer
from agent.limits.admission import PeersFull, PromptLimits, QueueFull
from agent.limits.budget import PromptBudget
from agent.runs.http import BadPrompt, PromptAccepted, UndoResult, display_author, page_args, parse_prompt
from agent.runs.store import AgentRun, RunStore, dump_json
from common.access import Role, TokenInfo, room_of
from common.http import Refusal, error_response

log = logging.getLogger("inhabit.agent")

MAX_BODY = 64 * 1024
QUEUE_RETRY_S = 10


class Agent(Protocol):
    """What the routes need of the agent (`agent.plugin.AgentPlugin`): its run store (made at
    start-up), and where a prompt is queued and an undo done (where the room's agent is)."""

    @property
    def runs(self) -> RunStore: ...

    async def submit(self, room: str, text: str, *, author: str, grant: Grant, installer: Installer | None = None) -> AgentRun:
        """Queue a prompt (PeersFull, QueueFull)."""
        ...

    async def undo(self, room: str, run: AgentRun) -> list[str] | None:
        """The strokes erased (None: no answer in time)."""
        ...


def installer_of(who: TokenInfo) -> Installer | None:
    """The edit link behind a prompt, as a behaviour it installs keeps it (never the token)."""
    if who.role != "edit":
        return None
    expires = int(who.expires.timestamp() * 1000) if who.expires is not None else None
    return Installer(id=who.id, label=who.label, expires=expires)


def _json(model: Any, status: int = 200) -> Response:
    return Response(dump_json(model), status_code=status, media_type="application/json")


async def _read_body(request: Request, limit: int = MAX_BODY) -> bytes | None:
    """The request body, or None once it passes `limit` bytes (read no further)."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


class RunRoutes:
    """The routes over the agent's run store; prompts and undos go where the room's agent is."""

    def __init__(self, limits: PromptLimits, agent: Agent) -> None:
        self.limits = limits
        self.agent = agent
        self.budget = PromptBudget(limits)
        """The per-link and per-room prompt limits, shared with the hosted agent's chat prompts."""
        self.routes: list[BaseRoute] = [
            Route("/rooms/{name}/prompts", self.prompt, methods=["POST"]),
            Route("/rooms/{name}/runs", self.list_runs, methods=["GET"]),
            Route("/rooms/{name}/runs/{run}", self.get_run, methods=["GET"]),
            Route("/rooms/{name}/runs/{run}/undo", self.undo, methods=["POST"]),
        ]

    async def prompt(self, request: Request) -> Response:
        room, who = room_of(request)
        body = await _read_body(request)
        if body is None:
            return error_response(413, f"request body larger than {MAX_BODY} bytes")
        try:
            prompt = parse_prompt(body)
        except BadPrompt as e:
            return error_response(e.status, str(e))
        refusal, give_back = await self.budget.take(room, who.id, who.role)
        if refusal is not None:
            return error_response(429, *refusal)
        try:
            run = await self.agent.submit(room, prompt.text, author=display_author(prompt.author, who.label),
                                     grant="write" if who.role == "edit" else "read", installer=installer_of(who))
        except PeersFull:
            await give_back()
            return error_response(503, f"the agent is busy in {self.limits.peers} rooms right now; try again shortly", QUEUE_RETRY_S)
        except QueueFull:
            await give_back()
            return error_response(429, f"the agent has {self.limits.queue} prompts waiting in this room; try again shortly", QUEUE_RETRY_S)
        except Refusal as e:  # e.g. 507: the data folder is over its budget (`common.disk`)
            await give_back()
            return e.response()
        except Exception as e:
            await give_back()
            log.exception("starting agent peer for %s", room)
            return error_response(503, f"could not start the agent for this room: {type(e).__name__}", QUEUE_RETRY_S)
        return _json(PromptAccepted(run=run.id, grant=run.grant), 202)

    async def list_runs(self, request: Request) -> Response:
        """A page of the room's runs as summaries, oldest first (`?limit=`, `?before=RUN` for older
        ones): read from the records' summary column off the loop and spliced, never decoded."""
        room, _ = room_of(request)
        limit, before = page_args(request.query_params)
        try:
            summaries, older = await self.agent.runs.page(room, limit, before)
        except Exception as e:  # cluster mode: PostgreSQL away
            return error_response(503, f"run records cannot be read now ({type(e).__name__}); try again shortly", QUEUE_RETRY_S)
        tail = f',"next":{json.dumps(older)}' if older is not None else ""
        return Response(f'{{"runs":[{",".join(summaries)}]{tail}}}', media_type="application/json")

    async def _find(self, request: Request, need: Role = "view") -> tuple[str, AgentRun]:
        """The room and the run the path names; raises the `Refusal` that answers instead (401/403, 404, 503)."""
        room, _ = room_of(request, need)
        try:
            run = await self.agent.runs.fetch(room, request.path_params["run"])
        except Exception as e:  # cluster mode: PostgreSQL away
            raise Refusal(503, f"run records cannot be read now ({type(e).__name__}); try again shortly", QUEUE_RETRY_S) from None
        if run is None:
            raise Refusal(404, "no such run in this room")
        return room, run

    async def get_run(self, request: Request) -> Response:
        _, run = await self._find(request)
        return _json(run)

    async def undo(self, request: Request) -> Response:
        room, run = await self._find(request, "edit")
        try:
            erased = await self.agent.undo(room, run)
        except PeersFull:
            return error_response(503, f"the agent is busy in {self.limits.peers} rooms right now; try again shortly", QUEUE_RETRY_S)
        if erased is None:
            return error_response(503, "the node running this room's agent did not answer; try again shortly", QUEUE_RETRY_S)
        return _json(UndoResult(run=run.id, erased=erased))
