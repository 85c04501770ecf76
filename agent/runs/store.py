"""Agent run records: what a prompt made the agent do, kept in memory per room.

Why: every agent action must be observable and undoable — the record holds the prompt, who
asked, with which grant, every piece of code executed, every capability call, the strokes it
added (the undo set), token usage and errors. Bounded per room so a busy room cannot grow
memory without limit.

Durability (optional): given `RunRecords` (`agent/runs/records.py`, the server's `<data>/runs.sqlite3`;
in cluster mode PostgreSQL, which other nodes write too), the store writes a record when its
owner says so (`RunStore.save(run)`: when it is added, starts, finishes or is undone), cut to
its byte limit first (`agent.runs.bounded`), and memory holds only the runs being worked on and
a few recent ones: the rest are read through, off the loop (`fetch`: one record; `page`: a page
of summaries from their column, never decoding a record). Saves are coalesced to one write per
event-loop tick, and the database work runs on one writer thread, never on the loop
(`common.writebehind`). Without records (`inhabit agent` standalone) it is memory-only.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
from collections import OrderedDict
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, Field, ValidationError
from pydantic_core import PydanticSerializationError

from agent.contract.callsample import keep_calls
from agent.contract.canvas import Grant
from agent.runs.bounded import SUMMARY_ERROR_CHARS, SUMMARY_ERRORS, SUMMARY_PROMPT, SUMMARY_REPLY, SUMMARY_STROKES, clip, fit
from agent.runs.records import RunRecords, RunRow
from agent.sandbox import CallRecord, scrub
from canvas import new_id, now_ms
from common.writebehind import WriteBehind

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
    code: list[str] = Field(default_factory=list, description="every JavaScript program executed, in order (long ones cut)")
    calls: list[CallRecord] = Field(default_factory=list, description="a sample of the capability calls made by the executed code: the "
                                    "first and the last (`agent.contract.callsample`), each cut to a preview")
    call_counts: dict[str, int] = Field(default_factory=dict, description="every capability call made, counted by name")
    calls_dropped: int = Field(default=0, description="calls left out of `calls` (counted in `call_counts`)")
    strokes: list[str] = Field(default_factory=list, description="ids of strokes the run added (undo erases these)")
    erased: list[str] = Field(default_factory=list)
    widgets: list[str] = Field(default_factory=list, description="ids of texts and buttons the run placed (undo removes these)")
    ids_dropped: int = Field(default=0, description="stroke ids left out of `strokes`/`erased` to keep the record under its byte limit "
                             "(undo still erases every stroke the run drew: it reads the run's tag in the room)")
    tokens: Tokens = Field(default_factory=Tokens)
    model: str | None = None
    reply: str | None = None
    errors: list[str] = Field(default_factory=list)
    undone: bool = False
    created: int = Field(default_factory=now_ms)
    started: int | None = None
    finished: int | None = None

    def keep_calls(self, calls: Sequence[CallRecord]) -> None:
        """Count an execute's calls and keep them in the run's bounded sample."""
        self.calls_dropped = keep_calls(self.calls, self.call_counts, self.calls_dropped, calls)

    def summary(self) -> RunSummary:
        """The list view: no code or calls; previews of the texts, the first stroke ids (bounded)."""
        return RunSummary(id=self.id, room=self.room, status=self.status, prompt=clip(self.prompt, SUMMARY_PROMPT), author=self.author,
                          grant=self.grant, source=self.source, strokes=self.strokes[:SUMMARY_STROKES], drawn=len(self.strokes) + self.ids_dropped,
                          calls=sum(self.call_counts.values()), tokens=self.tokens,
                          errors=[clip(e, SUMMARY_ERROR_CHARS) for e in self.errors[-SUMMARY_ERRORS:]], undone=self.undone,
                          created=self.created, finished=self.finished, reply=clip(self.reply, SUMMARY_REPLY) if self.reply is not None else None)


class RunSummary(BaseModel):
    """One entry of `GET /rooms/{name}/runs`: a run without its code and calls, its texts cut to previews."""

    id: str
    room: str
    status: Status
    prompt: str
    author: str
    grant: Grant
    source: Source
    strokes: list[str] = Field(description=f"the first {SUMMARY_STROKES} ids of strokes the run added")
    drawn: int = Field(default=0, description="how many strokes the run added")
    calls: int = Field(default=0, description="how many capability calls it made")
    tokens: Tokens
    errors: list[str] = Field(description=f"its last {SUMMARY_ERRORS} errors")
    undone: bool
    created: int
    finished: int | None = None
    reply: str | None = None


CACHED = 16
"""Finished runs of a room kept in memory (the newest), when the records are in a database: the
rest are read back from it when asked for."""


class RunStore:
    """Runs by room. With a database (`db`): in memory only the runs in progress, the ones not yet
    written and the newest `CACHED` finished ones per room; the rest are read from `db`, off the
    loop (`fetch`, `page`). Without one (`inhabit agent` standalone): at most `per_room` runs per
    room, all in memory (oldest finished ones dropped). Every record written is first cut to
    `record_bytes` (`agent.runs.bounded.fit`)."""

    def __init__(self, per_room: int = 200, db: RunRecords | None = None, record_bytes: int = 64 * 1024) -> None:
        self.per_room = per_room
        self.db = db
        self.record_bytes = record_bytes
        self._rooms: dict[str, OrderedDict[str, AgentRun]] = {}
        self._dirty: dict[str, AgentRun] = {}
        self._writer = WriteBehind(self._take, self._write, name="runs", describe=_describe, log=log) if db is not None else None

    @property
    def shared(self) -> bool:
        """Other processes write the records too (cluster mode)."""
        return self.db is not None and self.db.shared

    def _room(self, room: str) -> OrderedDict[str, AgentRun]:
        return self._rooms.setdefault(room, OrderedDict())

    def _trim(self, runs: OrderedDict[str, AgentRun]) -> None:
        """Drop the oldest finished runs past what memory keeps (they are in the database, or pending in `_dirty`)."""
        keep = self.per_room if self.db is None else CACHED
        finished = [k for k, r in runs.items() if r.status in ("done", "failed")]
        for run_id in finished[: max(0, len(finished) - keep)]:
            runs.pop(run_id)

    def add(self, run: AgentRun) -> AgentRun:
        runs = self._room(run.room)
        runs[run.id] = run
        self._trim(runs)
        self.save(run)
        return run

    def get(self, room: str, run_id: str) -> AgentRun | None:
        """A run held in memory (in progress or recent); `fetch` reads the others."""
        runs = self._rooms.get(room)
        run = runs.get(run_id) if runs is not None else None
        if run is None and (pending := self._dirty.get(run_id)) is not None and pending.room == room:
            return pending
        return run

    def list(self, room: str) -> list[AgentRun]:
        """The runs of `room` held in memory, oldest first."""
        return list((self._rooms.get(room) or {}).values())

    async def fetch(self, room: str, run_id: str) -> AgentRun | None:
        """`get`, else the run read and decoded from the database off the loop."""
        run = self.get(room, run_id)
        if run is not None or self.db is None:
            return run
        return await asyncio.to_thread(self._load_one, room, run_id)

    def _load_one(self, room: str, run_id: str) -> AgentRun | None:
        assert self.db is not None
        data = self.db.load_one(room, run_id)
        return _parse(data, room) if data else None

    async def page(self, room: str, limit: int, before: str | None = None) -> tuple[builtins.list[str], str | None]:
        """The summaries (JSON) of the room's newest `limit` runs older than run `before` (all if
        None), oldest first, and the cursor for the page before it (None: no older runs). From the
        database's summary column, read off the loop and never decoded; runs this process holds
        newer copies of, or has not written yet, from memory."""
        held = {r.id: r for r in [*self.list(room), *(r for r in self._dirty.values() if r.room == room)]}
        if self.db is None:
            return _page_of(list(held.values()), limit, before)
        rows, older = await asyncio.to_thread(self.db.summaries, room, limit, before)
        known = {run_id for run_id, _, _ in rows}
        out = [dump_json(held[run_id].summary()) if run_id in held else summary for run_id, _, summary in rows]
        if before is None:  # runs not written yet (or being written) are the newest: after every row
            since = rows[0][1] if rows and older is not None else -1
            fresh = sorted((r for r in held.values() if r.id not in known and r.created >= since), key=lambda r: r.created)
            ids = [run_id for run_id, _, _ in rows] + [r.id for r in fresh]
            out += [dump_json(r.summary()) for r in fresh]
            if len(out) > limit:
                older, out = ids[len(out) - limit], out[len(out) - limit:]
        return out, older

    def adopt(self, run: AgentRun) -> AgentRun:
        """Hold a run read from the records (this process works on it now: undo, takeover); not saved."""
        runs = self._room(run.room)
        held = runs.setdefault(run.id, run)
        self._trim(runs)
        return held

    async def save_now(self, run: AgentRun) -> None:
        """Write `run` and wait until it is written (before another node may update it)."""
        assert self.db is not None
        fit(run, self.record_bytes)
        await asyncio.to_thread(self.db.write, [_row(run)], [])

    async def interrupt_leftovers(self) -> None:
        """Runs left queued or running by a process that stopped (one process owns the records:
        embedded mode, at start-up) are marked failed, interrupted."""
        if self.db is None:
            return
        for run in await asyncio.to_thread(self._unfinished):
            run.status = "failed"
            run.errors.append(INTERRUPTED)
            run.reply = run.reply or INTERRUPTED
            run.finished = run.finished or now_ms()
            self._dirty[run.id] = run
        if self._writer is not None and self._dirty:  # written before it returns: they are in no room's memory to be read from
            await self._writer.flush_async()

    def _unfinished(self) -> builtins.list[AgentRun]:
        assert self.db is not None
        return [run for room, data in self.db.unfinished_anywhere() if (run := _parse(data, room)) is not None]

    def forget(self, room: str) -> None:
        """Drop a room's records from memory (they are read back from the database when asked
        for), so rooms an agent has left cost nothing. Memory-only stores keep them."""
        if self.db is not None:
            self._rooms.pop(room, None)

    # persistence -----------------------------------------------------------------------

    def save(self, run: AgentRun) -> None:
        """Persist `run` as it is now (soon, off the loop); a no-op without a database."""
        if self.db is not None and run.id in (self._rooms.get(run.room) or {}):
            self._dirty[run.id] = run
            self._schedule()

    def _schedule(self) -> None:
        if self._writer is not None and self._dirty:
            self._writer.schedule()

    def _take(self) -> RunWrites | None:
        if not self._dirty:
            return None
        for run in self._dirty.values():
            fit(run, self.record_bytes)
        upserts = [_row(r) for r in self._dirty.values()]
        self._dirty.clear()
        return upserts, []

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


def _row(run: AgentRun) -> RunRow:
    return RunRow(run.id, run.room, run.status, dump_json(run), dump_json(run.summary()), run.created)


def _page_of(runs: builtins.list[AgentRun], limit: int, before: str | None) -> tuple[builtins.list[str], str | None]:
    """A page of runs held in memory (oldest first), as `RunStore.page` answers."""
    if before is not None:
        at = next((i for i, r in enumerate(runs) if r.id == before), 0)
        runs = runs[:at]
    shown = runs[max(0, len(runs) - limit):]
    older = shown[0].id if len(runs) > len(shown) else None
    return [dump_json(r.summary()) for r in shown], older


RunWrites = tuple[list[RunRow], list[str]]
"""One write: upserts and the ids of records to delete."""


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
