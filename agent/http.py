"""The agent's HTTP payloads, defined once: the routes in `agent/plugin.py` read and emit
them, and the browser's TypeScript types are generated from them (`python -m inhabit.typegen`).
Run records themselves are `agent.runs.AgentRun` / `RunSummary`."""

from __future__ import annotations

from pydantic import BaseModel, Field

from agent.canvas_api import Grant
from agent.runs import RunSummary


class PromptRequest(BaseModel):
    """`POST /rooms/{name}/prompts`."""

    text: str
    author: str | None = Field(default=None, description="a display name the caller gives (not verified)")


class PromptAccepted(BaseModel):
    """The answer to a prompt (202): its run id and the grant it runs with."""

    run: str
    grant: Grant


class RunList(BaseModel):
    """`GET /rooms/{name}/runs`, oldest first."""

    runs: list[RunSummary]


class UndoResult(BaseModel):
    """`POST /rooms/{name}/runs/{id}/undo`: the strokes it erased."""

    run: str
    erased: list[str]
