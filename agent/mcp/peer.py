"""An MCP client in a room: a websocket peer whose every `execute` is an agent run.

Why a peer, as for the hosted agent (`agent/hosting/peer.py`): the client then shows in presence,
its cursor moves where it draws, and its writes take the path and the access checks
everybody's take. It connects with the token the client presented, so a view token's peer
is read-only at the server too, on top of its runs having no write capabilities bound.

Each execute is one `AgentRun` (source "mcp", author = the client's name) recorded through
`loop.execute_in_run`, exactly as the model loop records its executes, and added to the
shared `RunStore` once finished, so `GET /runs` and "Undo run" serve it like any other. A run
that drew or erased is announced in the chat by a line carrying its run (`Message.run`), which is
what makes the page show its card; reads and failed programs change nothing people see, so they stay out of the
chat (their records are in `/runs`).

An execute with `on` (an edit link's) installs a behaviour: the run is recorded here as any
execute's, and the install itself is carried out where the room's behaviours are held, by the
room's hosted agent, exactly as the built-in agent's installs are (`Installer` = the session's
link: the behaviour acts with its grant, pauses when it is revoked, and shows on a card).

Reads come from the room's one shared view on this node (`agent.mcp.shared`): an execute's
snapshot is a dict copy of it and `view` draws what its spatial index finds in the box, so no
call parses the room. A read-only session's own connection holds no copy of the room at all; an
edit session's keeps the document its writes are made in, and after a write waits (briefly)
until the shared view has it, so its next call reads its own writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import zlib
from collections.abc import Callable
from typing import Any, Protocol

from agent.behaviours.installs import InstallAnswer, InstallRequest
from agent.contract.canvas import CanvasSession, Grant, Quotas
from agent.contract.codemode import CodeMode
from agent.contract.events import Installer
from agent.contract.people import people_in
from agent.contract.render import View
from agent.contract.room_view import RoomView
from agent.contract.sight import look
from agent.mcp.shared import SharedRooms
from agent.mcp.tools import InstallPlan
from agent.runs.loop import execute_in_run
from agent.runs.store import AgentRun, RunStore
from agent.sandbox import FairPool, Share
from canvas import BBox, Message, bbox, now_ms, union
from common.actor import Actor
from common.http import Refusal
from wire.client import CanvasClient
from wire.protocol import SERVER_PEER_HEADER

OWN_WRITES_S = 2.0
"""How long an execute that wrote waits, at most, for the shared view to show its writes."""
COLORS = ("#0284c7", "#059669", "#d97706", "#db2777", "#0d9488", "#4f46e5")
"""Agent colours for MCP clients (the hosted agent is violet): one per client name."""


class Installing(Protocol):
    """Where an install is carried out: the agent (`agent.plugin.AgentPlugin.install`), wherever the room's behaviours are."""

    async def install(self, room: str, request: InstallRequest) -> InstallAnswer: ...


def color_for(name: str) -> str:
    return COLORS[zlib.crc32(name.encode()) % len(COLORS)]


class McpPeer:
    """One MCP session's presence and runs in one room."""

    def __init__(self, ws_base: str, room: str, *, token: str | None, name: str, grant: Grant, runs: RunStore,
                 code_mode: CodeMode, quotas: Quotas | None = None, credential: str | None = None,
                 release: Callable[[], None] | None = None, shared: SharedRooms | None = None,
                 whose: Callable[[int], Actor | None] | None = None) -> None:
        self.ws_base, self.room, self.token, self.name, self.grant = ws_base, room, token, name, grant
        self.credential = credential  # the server vouches for us as an MCP client's peer (presence kind "mcp")
        self._release = release
        self.runs = runs
        self.code_mode = code_mode
        self.quotas = quotas
        self.color = color_for(name)
        self.client: CanvasClient | None = None
        self.shared = shared
        """Where the room's shared view comes from (None: a view of the peer's own document)."""
        self.room_view: RoomView | None = None
        self._whose = whose or (lambda client_id: None)
        """The server's word on whose connection holds a presence client id (`Host.presence_of`), for `canvas.people()`."""

    def people(self) -> list[dict[str, Any]]:
        """Who is in the room now, as this session's connection sees presence (`canvas.people()`)."""
        return people_in(self._client, self._whose)

    async def start(self) -> McpPeer:
        headers = {SERVER_PEER_HEADER: self.credential} if self.credential else None
        try:
            if self.shared is not None:
                self.room_view = await self.shared.acquire(self.room)
            self.client = await CanvasClient.connect(self.ws_base, self.room, token=self.token, name=self.name, kind="mcp",
                                                     color=self.color, headers=headers,
                                                     document=self.grant == "write" or self.shared is None)
            if self.room_view is None:
                self.room_view = RoomView(self.client.doc).follow()
        except BaseException:  # never joined: its credential and its share of the room go now
            await self._leave()
            raise
        return self

    async def close(self) -> None:
        try:
            if self.client is not None:
                await self.client.close()
        finally:
            await self._leave()

    async def _leave(self) -> None:
        view, self.room_view = self.room_view, None
        if self.shared is not None:
            if view is not None:
                self.shared.release(self.room)
        elif view is not None:
            view.close()
        if self._release is not None:
            self._release()
            self._release = None

    @property
    def _view(self) -> RoomView:
        assert self.room_view is not None, "start() first"
        return self.room_view

    @property
    def _client(self) -> CanvasClient:
        assert self.client is not None, "start() first"
        return self.client

    async def execute(self, code: str, share: Share) -> dict[str, Any]:
        """Run `code` against the room as it is now, in `share`'s turn of the sandbox; its writes
        land in one transaction. `OverBudget` (nothing ran, nothing recorded) goes to the caller."""
        client = self._client
        run = AgentRun(room=self.room, prompt=_first_line(code), author=self.name, grant=self.grant, source="mcp",
                       status="running", started=now_ms())
        compact = await execute_in_run(self.code_mode, code, run, author=self.name, doc=lambda: client.doc, commit=self._commit,
                                       quotas=self.quotas, share=share, view=self._view, people=self.people)
        run.status, run.finished = ("done" if compact["ok"] else "failed"), now_ms()
        run.reply = _summary(run)
        self.runs.add(run)
        if run.strokes or run.erased:
            client.doc.post(Message(author=self.name, kind="agent", text=run.reply, run=run.id))  # `run` links the card
        with contextlib.suppress(TimeoutError):  # a stalled socket catches up when it reconnects; the room has the run
            await client.flush()
        if run.strokes or run.erased:
            await self._see_own(set(run.strokes), set(run.erased))
        return {"run": run.id, **compact}

    async def install(self, code: str, plan: InstallPlan, installer: Installer, keeper: Installing) -> dict[str, Any]:
        """Install `code` as a behaviour on `plan`'s triggers with `installer`'s authority, wherever the
        room's behaviours are held (`keeper.install`); recorded as one run of this client's."""
        run = AgentRun(room=self.room, prompt=_first_line(code), author=self.name, grant=self.grant, source="mcp",
                       status="running", started=now_ms())
        run.code.append(code)
        request = InstallRequest(code=code, on=plan.on, name=plan.name, anyone=plan.anyone, rehearse=plan.rehearse,
                                 installer=installer, run_id=run.id)
        try:
            answer = await keeper.install(self.room, request)
            compact = answer.compact
            run.keep_calls(answer.calls)
        except Exception as e:  # the room's agent could not be reached or started: nothing was installed
            why = e.message if isinstance(e, Refusal) else f"{type(e).__name__}: {e}"
            compact = {"ok": False, "error": {"kind": "busy", "message": f"the room's agent cannot install now: {why}"}, "behaviour": None,
                       "next": "Not installed, and nothing was written. Try again shortly."}
        run.strokes.extend((compact.get("written") or {}).get("drawn", []))
        if not compact["ok"]:
            err = compact.get("error") or {}
            run.errors.append(f"install: {err.get('kind')}: {err.get('message')}")
        run.status, run.finished = ("done" if compact["ok"] else "failed"), now_ms()
        behaviour = compact.get("behaviour") or {}
        run.reply = f"Installed the behaviour “{behaviour['name']}”." if compact["ok"] and behaviour else _summary(run)
        self.runs.add(run)
        if compact["ok"]:
            self._client.doc.post(Message(author=self.name, kind="agent", text=f"{run.reply} (run {run.id})", run=run.id))
        if run.strokes:
            await self._see_own(set(run.strokes), set())
        return {"run": run.id, **compact}

    async def _see_own(self, drawn: set[str], erased: set[str]) -> None:
        """Wait (at most OWN_WRITES_S) until the shared view shows what this session wrote, so the
        session's next call reads its own writes (they reach the view through the server)."""
        view = self._view
        if view.doc is self._client.doc:
            return
        done = asyncio.Event()

        def check(*_: object) -> None:
            if drawn.issubset(view.strokes) and not erased.intersection(view.strokes):
                done.set()

        unsubscribe = view.on_change(check)
        try:
            check()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(OWN_WRITES_S):
                    await done.wait()
        finally:
            unsubscribe()

    def _commit(self, session: CanvasSession) -> None:
        client = self._client
        if client.read_only:  # the server would drop the update and our copy of the room would drift
            raise PermissionError(f"the server made this connection read-only: {client.read_only}")
        session.commit(client.doc)
        box = union(bbox(s.points) for s in session.added)
        if box is not None:
            self._cursor(box.center)

    async def view(self, box: BBox | None, px: int, renderer: FairPool, share: Share, timeout_s: float) -> View:
        """The room (or `box` of it) as a PNG from the shared view, in `share`'s turn of `renderer`
        (`agent.contract.sight.look`: raises `OverBudget` and TimeoutError)."""
        picture = await look(self._view, box, px, renderer, share, timeout_s)
        if box is not None:
            self._cursor(picture.box.center)  # people see where it is looking
        return picture

    def _cursor(self, at: tuple[float, float]) -> None:
        self._client.set_awareness({"cursor": {"x": at[0], "y": at[1]}})


def _first_line(code: str, n: int = 120) -> str:
    line = next((ln.strip() for ln in code.splitlines() if ln.strip()), "")
    return line if len(line) <= n else line[: n - 1] + "…"


def _summary(run: AgentRun) -> str:
    if run.status == "failed":
        return run.errors[-1] if run.errors else "the program failed; nothing was written"
    done = [f"drew {len(run.strokes)} stroke{'s' if len(run.strokes) != 1 else ''}"] if run.strokes else []
    if run.erased:
        done.append(f"erased {len(run.erased)}")
    return "Ran a program: " + ", ".join(done) + "." if done else "Ran a program (nothing written)."
