"""Code Mode: the model gets `search` (the API reference) and `execute` (run JS), and `view` to look.

Why: instead of one JSON tool per canvas function, the model writes a small JavaScript
program against typed declarations and it runs, with exactly the granted capabilities, in the
sandbox. Loops, geometry and sequencing happen in code, in one round trip. Everything the
model reads about the API is generated from `agent.contract.canvas`, never written twice.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from agent.contract.behaviour import EXECUTE_PROPS
from agent.contract.canvas import CanvasSession, Grant
from agent.contract.reference import Reference
from agent.contract.sight import VIEW_TOOL
from agent.sandbox import UNKEYED, Binding, ErrorKind, Limits, RunRecord, Sandbox, Share

RESULT_CHARS = 4_000
CONSOLE_CHARS = 2_000

SYSTEM_PROMPT = """\
You are "{name}", an AI peer in "{room}", a shared multiplayer drawing canvas. People draw pen \
strokes and chat; you see the same room state they do and act on it by writing JavaScript.

{guide} Finish with a short plain-text reply for the chat (one or two sentences: what you saw \
and what you did). Be concise.
"""

GUIDE = """\
The room: a set of strokes (polylines of points), texts and buttons (widgets), and a chat. Coordinates are canvas units: \
x grows to the right, y grows DOWNWARDS (like a screen); a stroke's bbox is {{x0, y0, x1, y1}} \
with x0 <= x1 and y0 <= y1. Strokes carry no meaning but their geometry, author and kind \
(human or agent): to understand a drawing, analyse the raw points in code.

Tools:
- search(query): look up the `canvas` API (TypeScript declarations, docs, examples). Search \
before your first execute if you are unsure of a signature.
- execute(code): run a JavaScript program in a sandbox where the global `canvas` object is \
the API. It has no network, no DOM and no timers; calls are synchronous (no await needed). \
The value of the program's last expression is sent back to you (there is no top-level \
`return`; end with an expression such as `({{found, drawn}})`), with console.log output, the calls made, and any error. Each execute sees the room as it is \
when it starts. Your drawing is applied to the room in one step when the program finishes \
without error; if it throws, nothing is written, so fix it and execute again.
- view(box?, size?): a PNG of the room, or of a box of it, with the box it shows and canvas units \
per pixel. Use it to check a drawing by eye (where it is, how big, how it reads); do the analysis \
itself (finding, measuring, counting) on the raw points in execute.

Access: {access}

How to work: read the strokes, compute what you need with ordinary code (geometry, \
clustering, bounding boxes), then draw. Prefer one program that does the whole job. Keep \
returned values small (summaries, not whole stroke lists)."""
"""The room, the tools and how to use them: what any Code Mode client needs to know, whether
it is our model loop (inside the system prompt) or an MCP client (as the server's instructions)."""

BEHAVIOURS = """
Behaviours: to keep acting after this turn (play a game, keep a rule, redraw on a schedule), \
give execute `on` (triggers: "stroke", "erase", "message", "join", "leave", "press", {{"every": seconds}}) \
and a `name`: the program runs now, then by itself on every matching event, with no model call, \
seeing globals `event`, `state` (JSON it keeps between firings) and `behaviour`. Search \
'behaviour' first. The same name replaces it; behaviours.remove(name) removes it.
"""

ACCESS_WRITE = "read and write (canvas.draw, canvas.erase, canvas.say, canvas.text, canvas.update are available)."
ACCESS_READ = "read-only. canvas.draw/erase/say/text/button/update are NOT available; answer in your reply text."

TOOLS: list[dict[str, Any]] = [
    {
        "name": "search",
        "description": "Search the canvas JavaScript API reference (TypeScript declarations, docs, examples). "
        "Empty query lists every declaration.",
        "input_schema": {
            "type": "object",
            "properties": {"query": {"type": "string", "description": "keywords, e.g. 'draw circle' or 'strokes filter'"}},
            "required": ["query"],
        },
    },
    {
        "name": "execute",
        "description": "Run JavaScript in the sandbox with the global `canvas` API. Returns the last expression's value, "
        "console output, the capability calls made, and any error. Writes are applied only if the program succeeds.",
        "input_schema": {
            "type": "object",
            "properties": {"code": {"type": "string", "description": "a JavaScript program"}},
            "required": ["code"],
        },
    },
]


def access(grant: Grant) -> str:
    """What a run with `grant` may do, in the words the model reads."""
    return ACCESS_WRITE if grant == "write" else ACCESS_READ


def guide(access_text: str) -> str:
    return GUIDE.format(access=access_text)


def system_prompt(*, name: str, room: str, grant: Grant, behaviours: bool = False) -> str:
    """The system prompt; `behaviours`: the run may install them (it says how, briefly)."""
    text = SYSTEM_PROMPT.format(name=name, room=room, guide=guide(access(grant)))
    return text + BEHAVIOURS.format() if behaviours else text


def tools(*, behaviours: bool = False) -> list[dict[str, Any]]:
    """The hosted agent's tools: `search`, `execute` and `view` (`agent.contract.sight`); for a run
    that may install behaviours, `execute` also takes `on` and `name`."""
    search, execute = TOOLS
    if behaviours:
        schema = execute["input_schema"]
        execute = {**execute, "input_schema": {**schema, "properties": {**schema["properties"], **EXECUTE_PROPS}}}
    return [search, execute, VIEW_TOOL]


# ---- execute ------------------------------------------------------------------------


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[:n] + f"… [{len(text) - n} more chars cut]"


def compact_record(record: RunRecord, session: CanvasSession, committed: bool) -> dict[str, Any]:
    """What the model sees after an execute: small, and saying what to do next."""
    counts: dict[str, int] = {}
    for call in record.calls:
        counts[call.name] = counts.get(call.name, 0) + 1
    out: dict[str, Any] = {"ok": record.ok}
    if record.ok:
        text = json.dumps(record.result, default=str)
        out["result"] = record.result if len(text) <= RESULT_CHARS else _clip(text, RESULT_CHARS) + " (result cut: return a smaller summary)"
    console = "\n".join(record.console)
    if console:
        out["console"] = _clip(console, CONSOLE_CHARS)
    out["calls"] = counts
    if record.error is None:
        if committed:
            out["written"] = {"drawn": [s.id for s in session.added], "erased": len(session.erased), "said": len(session.said)}
            if session.widgets.dirty:
                out["written"]["placed"] = list(session.widgets.made)
                out["written"]["changed"] = len(session.widgets.put) - len(session.widgets.made)
                out["written"]["removed"] = len(session.widgets.removed)
            out["next"] = "Applied to the room. Reply to the user, or execute again to check or adjust."
        else:
            out["next"] = "Nothing was written. Reply to the user, or execute again."
        return out
    err = record.error
    message = _clip(err.message, 1000)
    if session.grant == "read" and "not a function" in message:
        message += " (this run is read-only: canvas.draw, canvas.erase and canvas.say are not granted)"
    out["error"] = {"kind": err.kind, "message": message}
    out["next"] = "Nothing was written to the room. " + _hint(err.kind, err.message)
    return out


def _hint(kind: ErrorKind, message: str) -> str:
    """The next step, by the kinds of error the sandbox reports (agent/sandbox/record.py)."""
    if kind == "quota" or "quota:" in message:  # the call limit, or a canvas quota (a capability error)
        return "Draw fewer strokes/points or make fewer calls per run (simplify shapes), then execute again."
    if kind == "timeout":
        return "The program ran too long: avoid unbounded loops and heavy work, then execute again."
    if kind in ("memory", "stack"):
        return "The program used too much memory or recursed too deep: keep data small, then execute again."
    if kind == "output":
        return "The program printed or returned too much: return a small summary, then execute again."
    if kind == "syntax":
        return "Fix the syntax error, then execute again."
    if message.startswith("TypeError"):
        return "Check argument shapes with search('<function name>'), then execute again."
    return "Fix the error (search the API if needed) and execute again."


class CodeMode:
    """Runs the model's code for one room/grant; keeps one `Sandbox` for many runs."""

    def __init__(self, sandbox: Sandbox | None = None, limits: Limits | None = None) -> None:
        self.sandbox = sandbox or Sandbox()
        self.limits = limits
        self._refs: dict[str, Reference] = {}

    def reference(self, grant: Grant, behaviours: bool = False) -> Reference:
        key = f"{grant}+behaviours" if behaviours else grant
        if key not in self._refs:
            self._refs[key] = Reference(grant, behaviours)
        return self._refs[key]

    async def execute(self, code: str, session: CanvasSession, commit: Callable[[CanvasSession], None],
                      extra: Sequence[Binding] = (), share: Share = UNKEYED) -> tuple[dict[str, Any], RunRecord]:
        """Run `code` against `session` (plus `extra` capabilities) in `share`'s turn of the
        sandbox; on success call `commit(session)` (one transaction). Raises `OverBudget`
        (nothing ran) when the share spent its CPU for the minute.

        Returns (compact record for the model, the sandbox RunRecord)."""
        record = await self.sandbox.run(code, bindings=[*session.bindings(), *extra], limits=self.limits, share=share)
        committed = False
        if record.ok and session.dirty:
            commit(session)
            committed = True
        return compact_record(record, session, committed), record

    def close(self) -> None:
        """Stop the sandbox's worker threads (at shutdown)."""
        self.sandbox.close()
