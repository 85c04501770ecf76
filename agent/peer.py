"""The agent as a PEER: it joins a room over the websocket like any browser does.

Why a peer and not a server-side hook: the agent then sees exactly what people see, its
writes travel the same path (and the same access checks) as theirs, it shows up in presence
with a cursor, and it can run anywhere (`inhabit agent --server ...`), not only in-process.

Prompts come from two places: chat messages addressed to it (`@agent ...` or its name) that
appear after it joined — written by editors, so they get the write grant — and `submit()`
(HTTP prompts), which carry the grant decided by the caller's token role.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any

from agent.canvas_api import CanvasSession, Grant, Quotas, undo_run
from agent.codemode import CodeMode
from agent.loop import ModelLoop, ModelSettings
from agent.runs import AgentRun, RunStore
from canvas import CanvasDoc, Message, now_ms
from canvas.geometry import bbox, union
from wire.client import CanvasClient

log = logging.getLogger("inhabit.agent")

AGENT_COLOR = "#7c3aed"


def addressed(text: str, name: str) -> str | None:
    """The prompt if `text` is addressed to the agent (`@agent ...`, `@Name ...`, `Name: ...`)."""
    names = {"agent", name.lower()}
    m = re.match(r"^\s*@?([\w.-]+)[,:]?\s*(.*)$", text, re.S)
    if not m or m.group(1).lower() not in names:
        return None
    if not text.lstrip().startswith("@") and m.group(1).lower() == "agent":
        return None  # plain "agent ..." is ordinary chat; "@agent" addresses us
    return m.group(2).strip() or "hello"


class AgentPeer:
    """One agent in one room: watches the chat, runs prompts one at a time, answers in chat."""

    def __init__(self, ws_base: str, room: str, *, token: str | None = None, name: str = "agent", runs: RunStore | None = None,
                 code_mode: CodeMode | None = None, settings: ModelSettings | None = None, quotas: Quotas | None = None) -> None:
        self.ws_base, self.room, self.token, self.name = ws_base, room, token, name
        self.runs = runs or RunStore()
        self.code_mode = code_mode or CodeMode()
        self.loop = ModelLoop(self.code_mode, settings)
        self.quotas = quotas
        self.client: CanvasClient | None = None
        self._seen: set[str] = set()
        self._queue: asyncio.Queue[AgentRun] = asyncio.Queue()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.busy = False
        self.last_active = time.monotonic()

    # lifecycle -------------------------------------------------------------------------

    async def start(self) -> AgentPeer:
        self.client = await CanvasClient.connect(self.ws_base, self.room, token=self.token, name=self.name, kind="agent", color=AGENT_COLOR)
        self._seen = {m.id for m in self.doc.messages()}  # only prompts that arrive after we joined
        self._presence(None)
        self.client.on_change(self._changed)
        self._tasks = [asyncio.create_task(self._watch()), asyncio.create_task(self._work())]
        return self

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.client is not None:
            await self.client.close()

    @property
    def doc(self) -> CanvasDoc:
        return self.client.doc

    # prompts ---------------------------------------------------------------------------

    def submit(self, prompt: str, *, author: str, grant: Grant, source: str = "http") -> AgentRun:
        run = self.runs.add(AgentRun(room=self.room, prompt=prompt, author=author, grant=grant, source=source))  # type: ignore[arg-type]
        if source != "chat":  # show HTTP prompts in the chat too; `run` set, so we never re-read it as a prompt
            self.doc.post(Message(author=author, kind="human", text=f"@{self.name} {prompt}" if not prompt.startswith("@") else prompt, run=run.id))
        self._queue.put_nowait(run)
        return run

    def _changed(self, *_: Any) -> None:
        self._wake.set()

    async def _watch(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                for m in self.doc.messages():
                    if m.id in self._seen:
                        continue
                    self._seen.add(m.id)
                    if m.run or (m.kind == "agent" and m.author == self.name):
                        continue  # our own lines and echoed HTTP prompts
                    prompt = addressed(m.text, self.name)
                    if prompt is not None:
                        grant: Grant = "read" if getattr(self.client, "read_only", None) else "write"  # a view-token peer cannot write
                        self.submit(prompt, author=m.author, grant=grant, source="chat")
            except Exception:
                log.exception("agent watcher")

    async def _work(self) -> None:
        while True:
            run = await self._queue.get()
            self.busy = True
            try:
                await self._run(run)
            except Exception as e:
                log.exception("agent run %s", run.id)
                run.status, run.reply = "failed", f"internal error: {type(e).__name__}: {e}"
                run.errors.append(run.reply)
                self._say(f"Sorry, that failed: {run.reply} (run {run.id})", run.id)
            finally:
                self.runs.save(run)
                self.busy = False
                self.last_active = time.monotonic()

    def idle_for(self) -> float:
        """Seconds since the last run ended (0 while working or with prompts queued)."""
        if self.busy or not self._queue.empty():
            return 0.0
        return time.monotonic() - self.last_active

    async def _run(self, run: AgentRun) -> None:
        self._say(f"On it: “{_short(run.prompt)}” (run {run.id})", run.id)
        run.status, run.started = "running", now_ms()
        self.runs.save(run)
        await self.loop.run(run, name=self.name, doc=lambda: self.doc, commit=self._commit, quotas=self.quotas)
        if run.status == "done":
            text = run.reply or "Done."
        else:
            text = f"That did not work: {run.reply or '; '.join(run.errors)}"
            if run.errors and run.reply not in run.errors:
                text += f" ({run.errors[-1]})"
        self._say(f"{_short(text, 1500)} (run {run.id})", run.id)

    def _commit(self, session: CanvasSession) -> None:
        session.commit(self.doc)
        boxes = [bbox(s.points) for s in session.added]
        box = union(boxes)
        self._presence(box.center if box else None)

    def _say(self, text: str, run_id: str) -> None:
        self.doc.post(Message(author=self.name, kind="agent", text=text, run=run_id))

    def _presence(self, at: tuple[float, float] | None) -> None:
        state: dict[str, Any] = {"user": {"name": self.name, "color": AGENT_COLOR, "kind": "agent"}, "cursor": None, "drawing": None}
        if at is not None:
            state["cursor"] = {"x": at[0], "y": at[1]}
        try:
            self.client.set_awareness(state)
        except Exception:
            log.debug("awareness update failed", exc_info=True)

    def undo(self, run_id: str) -> list[str]:
        ids = undo_run(self.doc, run_id)
        run = self.runs.get(self.room, run_id)
        if run is not None:
            run.undone = True
            self.runs.save(run)
        self._say(f"Undid run {run_id}: erased {len(ids)} stroke(s).", run_id)
        return ids


def _short(s: str, n: int = 120) -> str:
    s = " ".join(s.split())
    return s if len(s) <= n else s[: n - 1] + "…"


async def run_forever(ws_base: str, room: str, *, token: str | None, name: str, settings: ModelSettings | None = None) -> None:
    """`inhabit agent`: join a room and answer prompts until interrupted."""
    peer = await AgentPeer(ws_base, room, token=token, name=name, settings=settings).start()
    print(f"agent {name!r} joined {ws_base}/{room}; address it in chat with @agent or @{name}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await peer.close()
