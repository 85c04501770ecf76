"""The agent's HTTP payloads, defined once: the routes in `agent/plugin.py` read and emit
them, and the browser's TypeScript types are generated from them (`python -m inhabit.typegen`).
Refusals are `common.http.ApiError`, as the server's are.
Run records themselves are `agent.runs.store.AgentRun` / `RunSummary`.

Text enters here: a prompt body is parsed with the stdlib (which, unlike pydantic-core,
accepts lone-surrogate escapes such as "\\udc00"), every string is made well-formed (U+FFFD),
and only then validated, so nothing downstream (chat, run records, SQLite) sees bad text."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from pydantic import BaseModel, Field, ValidationError

from agent.contract.canvas import Grant
from agent.runs.store import RunSummary
from agent.sandbox import scrub

MAX_PROMPT = 4_000
MAX_AUTHOR = 40


class PromptRequest(BaseModel):
    """`POST /rooms/{name}/prompts`."""

    text: str
    author: str | None = Field(default=None, description="a display name the caller gives (not verified)")


class PromptAccepted(BaseModel):
    """The answer to a prompt (202): its run id and the grant it runs with."""

    run: str
    grant: Grant


class RunList(BaseModel):
    """`GET /rooms/{name}/runs[?limit=N&before=RUN]`: the newest `limit` runs (older than run
    `before`), oldest first."""

    runs: list[RunSummary]
    next: str | None = Field(default=None, description="more runs are older than these: pass this as `before` for them "
                             "(absent: none)")


PAGE = 50
"""Runs per page of `GET /rooms/{name}/runs` by default; `MAX_PAGE` at most."""
MAX_PAGE = 200


def page_args(query: Mapping[str, str]) -> tuple[int, str | None]:
    """`?limit=` (default `PAGE`, within 1..`MAX_PAGE`; anything else: the default) and `?before=`."""
    try:
        limit = min(max(int(query.get("limit", PAGE)), 1), MAX_PAGE)
    except ValueError:
        limit = PAGE
    return limit, query.get("before") or None


class UndoResult(BaseModel):
    """`POST /rooms/{name}/runs/{id}/undo`: the strokes it erased."""

    run: str
    erased: list[str]


class BadPrompt(ValueError):
    """A prompt body that cannot be used; `status` is the HTTP status that says why."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def parse_prompt(body: bytes) -> PromptRequest:
    """The prompt in `body`, well-formed and within bounds; BadPrompt otherwise."""
    usage = 'body must be JSON: {"text": "...", "author": "optional name"}'
    try:
        data = scrub(json.loads(body))
        prompt = PromptRequest.model_validate(data)
    except (ValueError, ValidationError, RecursionError):  # JSONDecodeError, UnicodeDecodeError: ValueErrors
        raise BadPrompt(usage) from None
    if not prompt.text.strip():
        raise BadPrompt(usage)
    if len(prompt.text) > MAX_PROMPT:
        raise BadPrompt(f"prompt longer than {MAX_PROMPT} characters", 413)
    return prompt


def clean_name(given: str | None) -> str:
    """A display name a caller gave, fit to show: control and bidi characters gone, spaces
    collapsed, at most MAX_AUTHOR characters ('' if nothing is left)."""
    name = " ".join(re.sub(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069]", " ", given or "").split())
    return name[: MAX_AUTHOR - 1] + "…" if len(name) > MAX_AUTHOR else name


def display_author(given: str | None, label: str) -> str:
    """How a prompt's author is shown: the token's identity, and a name the caller gave marked
    as such ("Alice (unverified) · viewer 3fa2c1"), so nobody can pose as the room owner."""
    name = clean_name(given)
    return f"{name} (unverified) · {label}" if name else label
