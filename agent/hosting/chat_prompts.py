"""The hosted agent's chat door: which new chat lines are prompts to it, and which of them may run.

Why its own module: the peer (`agent.hosting.peer`) queues and runs prompts whatever their door;
this reads the chat for them. On every document change it looks at the lines added since its last
look (O(new lines), at most `SEEN_KEPT`), takes those `addressed` to the agent (`@agent ...` or its
name) from people, and counts each against its writer's link (the server says who wrote each line:
`writer_of`) in the same `PromptBudget` as HTTP prompts, so a link has one budget whatever the door.
A refused prompt gets one chat line saying why (once per link until its budget refills, or while
the data folder refuses new history: `history_refused`), never a run. An editor's line gets the
write grant, anyone else's read (and read only, whoever wrote it, on a peer joined with a view link).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Callable

from pydantic import ValidationError

from agent.contract.canvas import Grant
from agent.limits.admission import QueueFull
from agent.limits.budget import PromptBudget
from canvas import CanvasDoc, Message
from common.actor import Actor

log = logging.getLogger("inhabit.agent")

SEEN_KEPT = 256
"""Chat lines looked at per change, at most (and ids remembered): a burst bigger than this
between two looks is read only in part, which bounds the cost of any burst."""
BUDGET_NOTE = " (chat prompts count like HTTP prompts; lines sent meanwhile are not run either)"
HISTORY_REFUSED_S = 60.0
"""While new history is refused, a link is told so at most once in this many seconds."""

Submit = Callable[[str, str, Grant], object]
"""`submit(prompt, author, grant)`: queue a chat prompt (`AgentPeer.submit`); raises `QueueFull` when there is no room."""


def addressed(text: str, name: str) -> str | None:
    """The prompt if `text` is addressed to the agent (`@agent ...`, `@Name ...`, `Name: ...`)."""
    names = {"agent", name.lower()}
    m = re.match(r"^\s*@?([\w.-]+)[,:]?\s*(.*)$", text, re.S)
    if not m or m.group(1).lower() not in names:
        return None
    if not text.lstrip().startswith("@") and m.group(1).lower() == "agent":
        return None  # plain "agent ..." is ordinary chat; "@agent" addresses us
    return m.group(2).strip() or "hello"


class ChatPrompts:
    """One room's chat, read for prompts to the agent named `name`. `doc()`: the peer's document;
    `read_only()`: whether the peer joined with a view link; `budget` None: chat prompts are bounded
    by the queue only (a peer outside the server)."""

    def __init__(self, room: str, name: str, doc: Callable[[], CanvasDoc], submit: Submit, *, read_only: Callable[[], bool],
                 writer_of: Callable[[str], Actor | None] | None = None, budget: PromptBudget | None = None,
                 history_refused: Callable[[], str | None] | None = None) -> None:
        self.room, self.name, self._doc, self._submit, self._read_only = room, name, doc, submit, read_only
        self._writer_of = writer_of  # chat line id -> who wrote it, as the server knows it
        self._budget = budget
        self._history_refused = history_refused  # why no new run may be recorded now (`common.disk`), or None
        self._seen: OrderedDict[str, None] = OrderedDict()  # ids of the latest chat lines looked at (bounded)
        self._refused: dict[str, float] = {}  # link -> until when its chat prompts are refused (said once)
        self._wake = asyncio.Event()

    def mark_read(self) -> None:
        """The chat as it is now is read: only prompts that arrive after this run."""
        self._mark_seen(self._chat_tail())

    def changed(self, *_: object) -> None:
        """The document changed (`CanvasClient.on_change`): `watch` looks at the chat again."""
        self._wake.set()

    async def watch(self) -> None:
        """Forever: on each change, the new lines addressed to the agent, as prompts."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                for m in self._new_messages():
                    if m.run or (m.kind == "agent" and m.author == self.name):
                        continue  # our own lines and echoed HTTP prompts
                    prompt = addressed(m.text, self.name)
                    if prompt is not None:
                        await self._prompt(prompt, m)
            except Exception:
                log.exception("agent watcher")

    def _new_messages(self) -> list[Message]:
        """Chat lines added since the last look, oldest first. O(new lines), not O(chat): this
        runs on every document change, strokes included, so a long chat must not tax every
        stroke. New lines are the tail after the newest line already seen (the chat appends;
        should old lines be trimmed, the ids still match)."""
        new = [m for m in self._chat_tail() if m.id not in self._seen]
        self._mark_seen(new)
        return new

    def _chat_tail(self) -> list[Message]:
        """The chat's last lines, back to the first already seen person's line (at most SEEN_KEPT).

        Lines of the agent's own (`kind: "agent"`, or with a run) do not stop the walk: they are
        seen as soon as written here, and a person's line written at the same time may be ordered
        before them once it arrives (Yjs orders concurrent inserts by client id)."""
        array = self._doc().messages_array
        n = len(array)
        out: list[Message] = []
        for i in range(n - 1, max(-1, n - 1 - SEEN_KEPT), -1):
            try:
                m = Message.model_validate(array[i])
            except ValidationError:
                continue
            if m.id in self._seen:
                if m.kind == "agent" or m.run:
                    continue
                break
            out.append(m)
        out.reverse()
        return out

    def _mark_seen(self, messages: list[Message]) -> None:
        for m in messages:
            self._seen[m.id] = None
        while len(self._seen) > SEEN_KEPT:
            self._seen.popitem(last=False)

    async def _prompt(self, prompt: str, m: Message) -> None:
        """A chat line addressed to us: counted against its writer's link, then queued."""
        writer = self._writer_of(m.id) if self._writer_of is not None else None
        may_write = not self._read_only() and (writer is None or writer.may_edit)  # a view-token peer cannot write
        grant: Grant = "write" if may_write else "read"
        give_back = None
        why = self._history_refused() if self._history_refused is not None else None
        if why is not None:  # a run is new history: the data folder is over its budget
            self._refuse(writer.id if writer is not None else None, m.author, why, HISTORY_REFUSED_S, "")
            return
        if self._budget is not None:
            link = writer.id if writer is not None else None
            refused, give_back = await self._budget.take(self.room, link, writer.role if writer is not None else "view")
            if refused is not None:
                self._refuse(link, m.author, *refused)
                return
        try:
            self._submit(prompt, m.author, grant)
        except QueueFull:
            if give_back is not None:
                await give_back()
            log.info("room %s: prompt queue full, chat prompt from %s not run", self.room, m.author)

    def _refuse(self, link: str | None, author: str, why: str, wait: float, note: str = BUDGET_NOTE) -> None:
        """Say once per link (until its budget refills, or `wait`) why its chat prompts are not run."""
        now, key = time.monotonic(), link or "?"
        for k in [k for k, until in self._refused.items() if until <= now]:
            del self._refused[k]
        if key in self._refused:
            return
        self._refused[key] = now + wait
        log.info("room %s: chat prompt from %s refused: %s", self.room, author, why)
        self._doc().post(Message(author=self.name, kind="agent", text=f"Not run: {why}{note}"))
