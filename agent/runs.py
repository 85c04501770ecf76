"""Agent run records: what a prompt made the agent do, kept in memory per room.

Why: every agent action must be observable and undoable — the record holds the prompt, who
asked, with which grant, every piece of code executed, every capability call, the strokes it
added (the undo set), token usage and errors. Bounded per room so a busy room cannot grow
memory without limit.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Literal

from pydantic import BaseModel, Field

from canvas import new_id, now_ms

Status = Literal["queued", "running", "done", "failed"]


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
    grant: Literal["read", "write"] = "read"
    source: Literal["chat", "http", "cli"] = "chat"
    code: list[str] = Field(default_factory=list, description="every JavaScript program executed, in order")
    calls: list[dict[str, Any]] = Field(default_factory=list, description="capability calls made by the executed code")
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

    def summary(self) -> dict[str, Any]:
        """The list view: no code or calls."""
        return self.model_dump(include={"id", "room", "status", "prompt", "author", "grant", "source", "strokes", "tokens", "errors", "undone", "created", "finished", "reply"})


class RunStore:
    """In-memory runs, newest last, at most `per_room` per room (oldest finished ones dropped)."""

    def __init__(self, per_room: int = 200) -> None:
        self.per_room = per_room
        self._rooms: dict[str, OrderedDict[str, AgentRun]] = {}

    def add(self, run: AgentRun) -> AgentRun:
        runs = self._rooms.setdefault(run.room, OrderedDict())
        runs[run.id] = run
        while len(runs) > self.per_room:
            oldest = next((k for k, r in runs.items() if r.status in ("done", "failed")), None)
            if oldest is None:
                break
            del runs[oldest]
        return run

    def get(self, room: str, run_id: str) -> AgentRun | None:
        return self._rooms.get(room, {}).get(run_id)

    def list(self, room: str) -> list[AgentRun]:
        return list(self._rooms.get(room, {}).values())
