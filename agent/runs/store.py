"""Agent run records: what a prompt made the agent do, kept in memory per room.

Why: every agent action must be observable and undoable — the record holds the prompt, who
asked, with which grant, every piece of code executed, every capability call, the strokes it
added (the undo set), token usage and errors. Bounded per room so a busy room cannot grow
memory without limit.

Durability (optional): given `RunRecords` (`agent/runs/records.py`, the server's `<data>/runs.sqlite3`;
in cluster mode PostgreSQL, which other nodes write too: then lookups read
it through, `fetch`/`fetch_all`, and memory holds only the runs this node is working on),
the store writes a record when its owner says so (`RunStore.save(run)`: when it is added,
starts, finishes or is undone), and reads a room's records back on its first lookup, so runs
and their undo survive a restart. Saves are coalesced to one write per event-loop tick, and
the database work runs on one writer thread, never on the loop (`common.writebehind`). Without records
(`inhabit agent` standalone) it is memory-only, exactly as before.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
from collections import OrderedDict
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field, ValidationError
from pydantic_core import PydanticSerializationError

from agent.contract.canvas import Grant
from agent.sandbox import CallRecord, scrub
from canvas import new_id, now_ms
from common.writebehind import WriteBehind

if TYPE_CHECKING:
    from agent.runs.records import RunRecords

log = logging.getLogger("inhabit.agent")

INTERRUPTED = "the server stopped before this run finished"

Status = Literal["queued", "running", "done", "failed"]
Source = Literal["chat", "http", "cli", "mcp", "behaviour"]
"""Where a run came from: a chat prompt, an HTTP prompt, the CLI, an MCP client's execute, or a behaviour that
asked the model (`behaviour.ask`)."""


class Tokens(BaseModel):
    input: int = 0
    output: int = 0
    turns: int = 0


class AgentRun(BaseModel):
    id: str = Field(default_factory=lambda: new_id("run-"))
    room: str
    status: Status = "queued"
    prompt: str
    author: str = "anonymous"
    grant: Grant = "read"
    source: Source = "chat"
    code: list[str] = Field(default_factory=list, description="every JavaScript program executed, in order")
    calls: list[CallRecord] = Field(default_factory=list, description="capability calls made by the executed code")
    strokes: list[str] = Field(default_factory=list, description="ids of strokes the run added (undo erases these)")
    erased: list[str] = Field(default_factory=list)
    tokens: Tokens = Field(default_factory=Tokens)
    model: str | None = None
    reply: str | None = None
    errors: list[str] = Field(default_factory=list)
    undone: bool = False
    created: int = Field(default_factory=now_ms)
    started: int | None = None
    finished: int | None = None

    def summary(self) -> RunSummary:
        """The list view: no code or calls."""
        return RunSummary.model_validate(self.model_dump(include=set(RunSummary.model_fields)))


class RunSummary(BaseModel):
    """One entry of `GET /rooms/{name}/runs`: a run without its code and calls."""

    id: str
    room: str
    status: Status
    prompt: str
    author: str
    grant: Grant
    source: Source
    strokes: list[str]
    tokens: Tokens
    errors: list[str]
    undone: bool
    created: int
    finished: int | None = None
    reply: str | None = None


class RunStore:
    """Runs, newest last, at most `per_room` per room (oldest finished ones dropped); persisted
    to `db` when one is given."""

    def __init__(self, per_room: int = 200, db: RunRecords | None = None) -> None:
        self.per_room = per_room
        self.db = db
        self._rooms: dict[str, OrderedDict[str, AgentRun]] = {}
        self._dirty: dict[str, AgentRun] = {}
        self._deleted: list[str] = []
        self._writer = WriteBehind(self._take, self._write, name="runs", describe=_describe, log=log) if db is not None else None

    @property
    def shared(self) -> bool:
        """Other processes write the records too (cluster mode)."""
        return self.db is not None and self.db.shared

    def _room(self, room: str, create: bool = False) -> OrderedDict[str, AgentRun] | None:
        runs = self._rooms.get(room)
        if runs is not None or self.db is None or self.shared:
            if runs is None and create:
                runs = self._rooms[room] = OrderedDict()
            return runs
        loaded: OrderedDict[str, AgentRun] = OrderedDict()
        for data in self.db.load(room):  # one small indexed read per room per process
            run = _parse(data, room)
            if run is None:
                continue
            if run.status in ("queued", "running"):  # its worker died with the old process
                run.status = "failed"
                run.errors.append(INTERRUPTED)
                run.reply = run.reply or INTERRUPTED
                run.finished = run.finished or now_ms()
                self._dirty[run.id] = run
            loaded[run.id] = run
        if self._dirty:
            self._schedule()
        if loaded or create:
            self._rooms[room] = loaded
            return loaded
        return None

    def add(self, run: AgentRun) -> AgentRun:
        runs = self._room(run.room, create=True)
        assert runs is not None
        runs[run.id] = run
        while len(runs) > self.per_room:
            oldest = next((k for k, r in runs.items() if r.status in ("done", "failed")), None)
            if oldest is None:
                break
            runs.pop(oldest)
            if self.db is not None:
                self._dirty.pop(oldest, None)
                self._deleted.append(oldest)
        self.save(run)
        return run

    def get(self, room: str, run_id: str) -> AgentRun | None:
        runs = self._room(room)
        return runs.get(run_id) if runs is not None else None

    def list(self, room: str) -> list[AgentRun]:
        return list((self._room(room) or {}).values())

    async def fetch(self, room: str, run_id: str) -> AgentRun | None:
        """`get`; when the records are shared, a run this node does not hold is read from the
        database (off the loop)."""
        run = self.get(room, run_id)
        if run is not None or not self.shared:
            return run
        assert self.db is not None
        data = await asyncio.to_thread(self.db.load_one, room, run_id)
        return _parse(data, room) if data else None

    async def fetch_all(self, room: str) -> builtins.list[AgentRun]:  # `list`: the method above
        """`list`; when the records are shared, the database's, with this node's newer copies."""
        if not self.shared:
            return self.list(room)
        assert self.db is not None
        mine = dict((self._rooms.get(room) or {}).items())
        out = [mine.pop(run.id, run) for data in await asyncio.to_thread(self.db.load, room) if (run := _parse(data, room))]
        return out + list(mine.values())

    def adopt(self, run: AgentRun) -> AgentRun:
        """Hold a run read from the shared records (this node works on it now); not saved."""
        runs = self._room(run.room, create=True)
        assert runs is not None
        return runs.setdefault(run.id, run)

    async def save_now(self, run: AgentRun) -> None:
        """Write `run` and wait until it is written (before another node may update it)."""
        assert self.db is not None
        await asyncio.to_thread(self.db.write, [(run.id, run.room, run.status, dump_json(run))], [])

    def forget(self, room: str) -> None:
        """Drop a room's records from memory (they are read back from the database on the next
        lookup), so rooms an agent has left cost nothing. Memory-only stores keep them."""
        if self.db is not None:
            self._rooms.pop(room, None)

    # persistence -----------------------------------------------------------------------

    def save(self, run: AgentRun) -> None:
        """Persist `run` as it is now (soon, off the loop); a no-op without a database."""
        if self.db is not None and run.id in (self._rooms.get(run.room) or {}):
            self._dirty[run.id] = run
            self._schedule()

    def _schedule(self) -> None:
        if self._writer is not None:
            self._writer.schedule()

    def _take(self) -> RunWrites | None:
        if not self._dirty and not self._deleted:
            return None
        upserts: builtins.list[tuple[str, str, str, str]] = [(r.id, r.room, r.status, dump_json(r)) for r in self._dirty.values()]
        deletes, self._deleted = self._deleted, []
        self._dirty.clear()
        return upserts, deletes

    def _write(self, batch: RunWrites) -> None:
        assert self.db is not None
        self.db.write(*batch)

    def flush(self) -> None:
        """Write every pending change now and wait for it (blocking; for shutdown and sync use)."""
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        if self._writer is None or self._writer.closed:
            return
        self._writer.close()
        assert self.db is not None
        self.db.close()


RunWrites = tuple[list[tuple[str, str, str, str]], list[str]]
"""One write: upserts (id, room, status, JSON) and the ids of records to delete."""


def _describe(batch: RunWrites) -> str:
    return f"{len(batch[0])} run record(s)"


def _parse(data: str, room: str) -> AgentRun | None:
    try:
        return AgentRun.model_validate_json(data)
    except (ValidationError, ValueError):
        log.warning("skipping an unreadable run record in room %s", room)
        return None


def dump_json(model: BaseModel) -> str:
    """`model` as JSON, always: a string that UTF-8 cannot hold (a lone surrogate that slipped
    past the edges) is repaired, so one bad record can never fail a batch write or a route."""
    try:
        return model.model_dump_json()
    except PydanticSerializationError:
        log.warning("repairing ill-formed text in a %s", type(model).__name__)
        return type(model).model_validate(scrub(model.model_dump(mode="python"))).model_dump_json()
