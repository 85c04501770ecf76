"""An MCP client in a room: a websocket peer whose every `execute` is an agent run.

Why a peer, as for the hosted agent (`agent/hosting/peer.py`): the client then shows in presence,
its cursor moves where it draws, and its writes take the path and the access checks
everybody's take. It connects with the token the client presented, so a view token's peer
is read-only at the server too, on top of its runs having no write capabilities bound.

Each execute is one `AgentRun` (source "mcp", author = the client's name) recorded through
`loop.execute_in_run`, exactly as the model loop records its executes, and added to the
shared `RunStore` once finished, so `GET /runs` and "Undo run" serve it like any other. A run
that drew or erased is announced in the chat with its run id, which is what makes the page
show its card; reads and failed programs change nothing people see, so they stay out of the
chat (their records are in `/runs`).

Reads come from the room's one shared view on this node (`agent.mcp.shared`): an execute's
snapshot is a dict copy of it and `view` draws what its spatial index finds in the box, so no
call parses the room. A read-only session's own connection holds no copy of the room at all; an
edit session's keeps the document its writes are made in, and after a write waits (briefly)
until the shared view has it, so its next call reads its own writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import zlib
from collections.abc import Callable
from typing import Any

from agent.contract.canvas import CanvasSession, Grant, Quotas
from agent.contract.codemode import CodeMode
from agent.contract.render import View, frame, render
from agent.contract.room_view import RoomView
from agent.mcp.shared import SharedRooms
from agent.runs.loop import execute_in_run
from agent.runs.store import AgentRun, RunStore
from agent.sandbox import FairPool, Share
from canvas import BBox, Message, Stroke, bbox, now_ms, union
from wire.client import CanvasClient
from wire.protocol import SERVER_PEER_HEADER

OWN_WRITES_S = 2.0
"""How long an execute that wrote waits, at most, for the shared view to show its writes."""
COLORS = ("#0284c7", "#059669", "#d97706", "#db2777", "#0d9488", "#4f46e5")
"""Agent colours for MCP clients (the hosted agent is violet): one per client name."""


def color_for(name: str) -> str:
    return COLORS[zlib.crc32(name.encode()) % len(COLORS)]


class McpPeer:
    """One MCP session's presence and runs in one room."""

    def __init__(self, ws_base: str, room: str, *, token: str | None, name: str, grant: Grant, runs: RunStore,
                 code_mode: CodeMode, quotas: Quotas | None = None, credential: str | None = None,
                 release: Callable[[], None] | None = None, shared: SharedRooms | None = None) -> None:
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
                                       quotas=self.quotas, share=share, view=self._view)
        run.status, run.finished = ("done" if compact["ok"] else "failed"), now_ms()
        run.reply = _summary(run)
        self.runs.add(run)
        if run.strokes or run.erased:
            client.doc.post(Message(author=self.name, kind="agent", text=f"{run.reply} (run {run.id})", run=run.id))
        with contextlib.suppress(TimeoutError):  # a stalled socket catches up when it reconnects; the room has the run
            await client.flush()
        if run.strokes or run.erased:
            await self._see_own(set(run.strokes), set(run.erased))
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
        """The room (or `box` of it) as a PNG, drawn on one of `renderer`'s threads in `share`'s
        turn (rooms take turns: `agent.sandbox.fair`) from what the shared view's index finds
        there (no parse of the room; the render's cost is bounded by its points). Raises
        `OverBudget` (the share spent its render time for the minute) and TimeoutError (the
        drawing took over `timeout_s`; its thread keeps the share's turn until it ends)."""
        async with renderer.turn(share) as turn:
            view = self._view  # read when it is our turn: views waiting in line hold no list of strokes
            around = view.extent()
            shown = frame([], box, around) if box is not None or around is not None else None
            strokes: list[Stroke] = view.query(shown)
            picture = await turn.run(functools.partial(render, strokes, box, px, around=around, widgets=view.widgets_in(shown)), timeout_s)
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
