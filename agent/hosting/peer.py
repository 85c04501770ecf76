"""The agent as a PEER: it joins a room over the websocket like any browser does.

Why a peer and not a server-side hook: the agent then sees exactly what people see, its
writes travel the same path (and the same access checks) as theirs, it shows up in presence
with a cursor, and it can run anywhere (`inhabit agent --server ...`), not only in-process.

Prompts come from two places: chat messages addressed to it (`@agent ...` or its name) that
appear after it joined — written by editors, so they get the write grant — and `submit()`
(HTTP prompts), which carry the grant decided by the caller's token role. A chat prompt counts
against its writer's link in the same `PromptBudget` as HTTP prompts (`agent.hosting.chat_prompts`
reads the chat for them and says why one is refused), so a link has one budget whatever the door. Accepted
prompts wait in a bounded `PromptQueue` (edit grants first, the last bound) and run one at a
time, so a room holds at most one model loop and one sandbox run at once.

The server vouches for this peer as its agent (presence kind "agent", chat lines with
`kind: "agent"` and `run`) only when it shows the credential the plugin got from
`Host.peers` (`credential`); without it, it is shown as the link it connects with.

The lines it posts itself (an HTTP prompt's echo, a run's status lines, a behaviour's question)
are vouched for to the room's behaviours (`agent.behaviours.actors`) with the link and grant
behind them, so a behaviour firing on a viewer's prompt acts as a viewer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from agent.behaviours.actors import Actors
from agent.behaviours.installs import RunInstalls
from agent.behaviours.model import Behaviour, FiringSummary
from agent.behaviours.scheduler import Hosting, RoomBehaviours
from agent.contract.canvas import CanvasSession, Grant, Quotas, undo_run
from agent.contract.codemode import CodeMode
from agent.contract.events import Installer, describe_triggers
from agent.contract.people import people_in
from agent.contract.room_view import RoomView
from agent.hosting.chat_prompts import ChatPrompts
from agent.hosting.outcomes import outcomes
from agent.limits.admission import PromptQueue, QueueFull
from agent.limits.budget import PromptBudget
from agent.runs.loop import ModelClient, ModelLoop
from agent.runs.settings import AgentSettings
from agent.runs.store import AgentRun, RunStore
from agent.sandbox import FairPool
from canvas import CanvasDoc, Message, now_ms
from canvas.geometry import bbox, union
from common.actor import Actor, Role
from wire.client import CanvasClient
from wire.protocol import SERVER_PEER_HEADER

log = logging.getLogger("inhabit.agent")

AGENT_COLOR = "#7c3aed"


class AgentPeer:
    """One agent in one room: watches the chat, runs prompts one at a time, answers in chat."""

    def __init__(self, ws_base: str, room: str, *, token: str | None = None, name: str = "agent", runs: RunStore | None = None,
                 code_mode: CodeMode | None = None, settings: AgentSettings | None = None, quotas: Quotas | None = None,
                 queue: int = 8, hosting: Hosting | None = None, model_client: ModelClient | None = None,
                 credential: str | None = None, writer_of: Callable[[str], Actor | None] | None = None,
                 budget: PromptBudget | None = None, history_refused: Callable[[], str | None] | None = None,
                 renderer: FairPool | None = None) -> None:
        self.ws_base, self.room, self.token, self.name = ws_base, room, token, name
        self.runs = runs or RunStore()
        self.code_mode = code_mode or CodeMode()
        self.loop = ModelLoop(self.code_mode, settings, client=model_client, people=self.people, renderer=renderer)
        self.quotas = quotas
        self.client: CanvasClient | None = None
        self.view: RoomView | None = None
        """The room's strokes parsed once and kept in step with the client's document (`start` makes it)."""
        self._queue: PromptQueue[AgentRun] = PromptQueue(queue, lambda r: r.grant)
        self._tasks: list[asyncio.Task[None]] = []
        self.busy = False
        self.last_active = time.monotonic()
        self._hosting = hosting
        self.behaviours: RoomBehaviours | None = None
        """The room's behaviours, hosted here (only when the plugin hosts this peer)."""
        self._installers: dict[str, Installer | None] = {}  # queued run id -> the edit link that asked
        self.credential = credential
        """What the server vouches for this peer by (`Host.peers`); None: shown as its link."""
        self._writer_of = writer_of  # chat line id -> who wrote it, as the server knows it
        self.chat = ChatPrompts(room, name, lambda: self.doc, lambda prompt, author, grant: self.submit(prompt, author=author, grant=grant, source="chat"),
                                read_only=lambda: bool(getattr(self.client, "read_only", None)), writer_of=writer_of, budget=budget,
                                history_refused=history_refused)
        """The chat read for prompts (`agent.hosting.chat_prompts`)."""

    # lifecycle -------------------------------------------------------------------------

    async def start(self) -> AgentPeer:
        # unseen until the chat it found is marked as read: a prompt posted once people can
        # see the agent is always new to it
        headers = {SERVER_PEER_HEADER: self.credential} if self.credential else None
        self.client = await CanvasClient.connect(self.ws_base, self.room, token=self.token, name=self.name, kind="agent",
                                                 color=AGENT_COLOR, presence=False, headers=headers)
        self.view = await RoomView.load(self.client.doc)  # the room's strokes parsed once, for runs and behaviours alike
        self.chat.mark_read()  # only prompts that arrive after we joined
        self._presence(None)
        self.client.on_change(self.chat.changed)
        if self._hosting is not None:
            hosting, room = self._hosting, self.room
            actors = Actors(run_actor=self._run_actor, presence=lambda cid: hosting.presence_of(room, cid),
                            writer=self._writer_of or (lambda message_id: None),
                            behaviour_name=lambda bid: (b.name if (b := hosting.store.get(room, bid)) is not None else None))
            self.behaviours = RoomBehaviours(self.room, self.client, hosting, author=self.name, ask=self._behaviour_asks, actors=actors,
                                             view=self.view).start()
        self._tasks = [asyncio.create_task(self.chat.watch()), asyncio.create_task(self._work())]
        return self

    async def close(self) -> None:
        if self.behaviours is not None:
            await self.behaviours.close()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.client is not None:
            with contextlib.suppress(Exception):  # what the last run or firing wrote leaves before we do
                await self.client.flush(timeout=2)
            await self.client.close()
        if self.view is not None:
            self.view.close()

    def people(self) -> list[dict[str, Any]]:
        """Who is in the room now (`canvas.people()` in its runs): presence as this peer sees it, with
        the server's word on each connection where it can give it (only for the peer it hosts)."""
        hosting, room = self._hosting, self.room
        return people_in(self.connected, lambda cid: hosting.presence_of(room, cid) if hosting is not None else None)

    @property
    def connected(self) -> CanvasClient:
        """The peer's websocket client (`start` made it)."""
        if self.client is None:
            raise RuntimeError("the agent peer has not started")
        return self.client

    @property
    def doc(self) -> CanvasDoc:
        return self.connected.doc

    # prompts ---------------------------------------------------------------------------

    def room_for(self, grant: Grant) -> bool:
        """Whether a prompt with `grant` would be queued now (else `submit` raises QueueFull)."""
        return self._queue.room_for(grant)

    def submit(self, prompt: str, *, author: str, grant: Grant, source: str = "http", installer: Installer | None = None,
               echo: Message | None = None, by: Actor | None = None) -> AgentRun:
        """Queue a prompt; raises `QueueFull` (nothing recorded or written) when there is no room.
        `installer`: the edit link that asked, if known (only then may the run install behaviours)."""
        if not self._queue.room_for(grant):
            raise QueueFull
        return self.enqueue(self.runs.add(AgentRun(room=self.room, prompt=prompt, author=author, grant=grant, source=source)),
                            installer=installer, echo=echo, by=by)

    def enqueue(self, run: AgentRun, *, installer: Installer | None = None, echo: Message | None = None, by: Actor | None = None) -> AgentRun:
        """Queue a recorded run (`submit`'s, or in cluster mode one another node took, or a dead
        node left); raises `QueueFull`. `by`: who the echoed prompt line is (default: the
        prompt's link, with the run's grant)."""
        if not self._queue.room_for(run.grant):
            raise QueueFull
        if echo is not None:
            self._post(echo.model_copy(update={"run": run.id}), by)
        elif run.source != "chat":  # show HTTP prompts in the chat too; `run` set, so we never re-read it as a prompt
            text = run.prompt if run.prompt.startswith("@") else f"@{self.name} {run.prompt}"
            self._post(Message(author=run.author, kind="human", text=text, run=run.id),
                       by or Actor(id=installer.id if installer else None, name=run.author, role=_role(run.grant)))
        self._installers[run.id] = installer
        displaced = self._queue.put(run)
        if displaced is not None:
            self._finish(displaced, "dropped: the queue was full and an editor's prompt took its place; ask again later")
        return run

    def refuse(self, run: AgentRun, reason: str) -> None:
        """End a recorded run that will not run (it says so in the record and the chat)."""
        self._finish(run, reason)

    def _finish(self, run: AgentRun, reason: str) -> None:
        """End a run that never ran (it says so in the record and the chat)."""
        run.status, run.reply, run.finished = "failed", reason, now_ms()
        run.errors.append(reason)
        self._installers.pop(run.id, None)
        self.runs.save(run)
        self._say(f"Not run: {reason}", run.id)

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
                self._say(f"Sorry, that failed: {run.reply}", run.id)
            finally:
                self.runs.save(run)
                self.busy = False
                self.last_active = time.monotonic()

    def idle_for(self) -> float:
        """Seconds since the last run or firing ended (0 while working or with prompts or events waiting)."""
        b = self.behaviours
        if self.busy or len(self._queue) or (b is not None and not b.idle()):
            return 0.0
        return time.monotonic() - max(self.last_active, b.last_active if b is not None else 0.0)

    async def _run(self, run: AgentRun) -> None:
        self._say(f"On it: “{_short(run.prompt)}”", run.id)
        run.status, run.started = "running", now_ms()
        self.runs.save(run)
        installer = self._installers.pop(run.id, None)
        installs = RunInstalls(self.behaviours, installer) if self.behaviours is not None and run.grant == "write" else None
        context = outcomes(self.behaviours.behaviours()) if self.behaviours is not None else ""
        await self.loop.run(run, name=self.name, doc=lambda: self.doc, commit=self._commit, quotas=self.quotas, installs=installs,
                            view=self.view, context=context)
        if run.status == "done":
            text = run.reply or "Done."
        else:
            text = f"That did not work: {run.reply or '; '.join(run.errors)}"
            if run.errors and run.reply not in run.errors:
                text += f" ({run.errors[-1]})"
        self._say(_short(text, 1500), run.id)

    def _commit(self, session: CanvasSession) -> None:
        session.commit(self.doc)
        boxes = [bbox(s.points) for s in session.added]
        box = union(boxes)
        self._presence(box.center if box else None)

    def _say(self, text: str, run_id: str) -> None:
        """A line about a run: its `run` field links it to the run's card (no run id in the text)."""
        line = Message(author=self.name, kind="agent", text=text, run=run_id)
        self._post(line, self._run_actor(run_id))

    def _post(self, line: Message, by: Actor | None) -> None:
        """Post a chat line, vouching to the room's behaviours for who is behind it."""
        if by is not None and self.behaviours is not None:
            self.behaviours.actors.vouch(line.id, by)
        self.doc.post(line)

    def _run_actor(self, run_id: str) -> Actor | None:
        """Who acts in a run of this room: the agent (or an MCP client) with the run's grant."""
        run = self.runs.get(self.room, run_id)
        if run is None:
            return None
        if run.source == "mcp":
            return Actor(name=run.author, kind="mcp", role=_role(run.grant))
        return Actor(name=self.name, kind="agent", role=_role(run.grant))

    def _presence(self, at: tuple[float, float] | None) -> None:
        state: dict[str, Any] = {"user": {"name": self.name, "color": AGENT_COLOR, "kind": "agent"}, "cursor": None, "drawing": None}
        if at is not None:
            state["cursor"] = {"x": at[0], "y": at[1]}
        try:
            self.connected.set_awareness(state)
        except Exception:
            log.debug("awareness update failed", exc_info=True)

    def undo(self, run_id: str) -> list[str]:
        ids = undo_run(self.doc, run_id)
        run = self.runs.get(self.room, run_id)
        if run is not None:
            run.undone = True
            self.runs.save(run)
        self._say(f"Undid the run: erased {len(ids)} stroke(s).", run_id)
        return ids

    # behaviours ------------------------------------------------------------------------

    def _behaviour_asks(self, b: Behaviour, text: str, recent: list[FiringSummary]) -> bool:
        """`behaviour.ask(text)`: a prompt for the model with the behaviour's code, state and recent
        firings, run with the asking firing's grant (the last of `recent`): its installer's, or read
        (and unable to install) when a viewer caused the firing. False if the queue had no room."""
        grant: Grant = recent[-1].grant if recent else "read"
        firings = "\n".join(f"- {f.model_dump_json(exclude_none=True)}" for f in recent) or "none yet"
        prompt = (f"Your behaviour “{b.name}” (id {b.id}, on {describe_triggers(b.on)}, version {b.version}, {b.firings} firings) asks: {text}\n\n"
                  f"Its code:\n```js\n{b.code}\n```\nIts state: {_short(json.dumps(b.state), 4000)}\nIts recent firings, oldest first:\n{firings}\n\n"
                  "Decide: answer in the chat, replace it (execute with the same name and on), or remove it (behaviours.remove).")
        echo = Message(author=self.name, kind="agent", text=f"Behaviour “{b.name}” asks: {_short(text, 500)}", behaviour=b.id)
        by = Actor(id=b.id, name=b.name, kind="behaviour", role=_role(grant))
        try:
            self.submit(prompt, author=f"behaviour {b.name}", grant=grant, source="behaviour", installer=b.installer if grant == "write" else None,
                        echo=echo, by=by)
        except QueueFull:
            return False
        return True

    def undo_firing(self, b: Behaviour, firing_id: str) -> list[str]:
        """Erase what one firing drew (one transaction), and say so in the chat."""
        ids = undo_run(self.doc, firing_id)
        self.doc.post(Message(author=self.name, kind="agent", text=f"Undid a firing of “{b.name}”: erased {len(ids)} stroke(s).", behaviour=b.id))
        return ids


def _role(grant: Grant) -> Role:
    return "edit" if grant == "write" else "view"


def _short(s: str, n: int = 120) -> str:
    s = " ".join(s.split())
    return s if len(s) <= n else s[: n - 1] + "…"


async def run_forever(ws_base: str, room: str, *, token: str | None, name: str, settings: AgentSettings | None = None) -> None:
    """`inhabit agent`: join a room and answer prompts until interrupted."""
    peer = await AgentPeer(ws_base, room, token=token, name=name, settings=settings).start()
    print(f"agent {name!r} joined {ws_base}/{room}; address it in chat with @agent or @{name}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await peer.close()
