"""The model loop (one agent run): prompt -> (search | execute | view)* -> reply, with the `anthropic` SDK.

Why a separate module: the loop knows nothing about websockets or HTTP. It gets a prompt, a
way to take a fresh room snapshot and a way to commit writes, and fills in an `AgentRun`.
Every failure (no key, model unreachable, garbage reply, bad tool input, turn/token caps)
ends as a readable reply and an error in the run record, never as an exception that could
take a server down.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Callable
from typing import Any

from agent.contract.behaviour import NO_INSTALLER, Installs
from agent.contract.canvas import CanvasSession, Quotas
from agent.contract.codemode import CodeMode, system_prompt, tools
from agent.contract.events import BadInstall, Trigger, parse_name, parse_rehearsal, parse_triggers
from agent.contract.people import People
from agent.contract.room_view import RoomView
from agent.runs import viewing
from agent.runs.settings import AgentSettings
from agent.runs.store import AgentRun
from agent.runs.viewing import Content, forget_old_pictures, view_tool
from agent.sandbox import UNKEYED, Binding, FairPool, OverBudget, Share
from canvas import CanvasDoc, now_ms

log = logging.getLogger("inhabit.agent")


def model_client(settings: AgentSettings) -> Any:
    """The Messages API client. Blocking: the first call imports the SDK (~1.5 s of CPU), so it
    is made off the event loop, once (`ModelClient`)."""
    from anthropic import AsyncAnthropic  # the SDK reads ANTHROPIC_BASE_URL itself

    return AsyncAnthropic(timeout=settings.timeout_s, max_retries=settings.max_retries)


class ModelClient:
    """The Messages API client, made on first use, off the event loop, once, and shared by every
    room's peer. Why not at start-up: importing the SDK costs ~1.5 s of CPU, and most servers
    (and test servers) start and stop without a prompt. Why off the loop: importing it there
    would stall every room on the node (in cluster mode, long enough to lose 2-s leases)."""

    def __init__(self, settings: AgentSettings, client: Any = None) -> None:
        self.settings = settings
        self._client = client
        self._making = asyncio.Lock()  # concurrent first prompts wait for the one client being made

    async def get(self) -> Any:
        """The client; a failure to make it is raised here, and the next call tries again."""
        if self._client is None:
            async with self._making:
                if self._client is None:
                    self._client = await asyncio.to_thread(model_client, self.settings)
        return self._client


def has_credentials() -> bool:
    return bool(os.environ.get("ANTHROPIC_API_KEY") or os.environ.get("ANTHROPIC_AUTH_TOKEN"))


NO_KEY = "The agent has no model access: set ANTHROPIC_API_KEY (and optionally ANTHROPIC_BASE_URL) for the server, then ask again."


class ModelLoop:
    """Drives one run. `snapshot()` returns the room now; `commit(session)` applies a run's writes."""

    def __init__(self, code_mode: CodeMode, settings: AgentSettings | None = None, client: ModelClient | None = None,
                 people: People | None = None, renderer: FairPool | None = None) -> None:
        self.code_mode = code_mode
        self.people = people
        """Who is in the room now, for `canvas.people()` in executes (the peer's presence)."""
        self.settings = settings or AgentSettings()
        self.client = client or ModelClient(self.settings)
        """Shared by every peer of a server (`agent.plugin`); a peer of its own (`inhabit agent`) makes one."""
        self.renderer = renderer or viewing.renderer()
        """Where `view`s are drawn: the agent plugin's, shared by every room's peer (`agent.runs.viewing`)."""

    async def run(self, run: AgentRun, *, name: str, doc: Callable[[], CanvasDoc], commit: Callable[[CanvasSession], None], quotas: Quotas | None = None,
                  installs: Installs | None = None, view: RoomView | None = None, context: str = "") -> AgentRun:
        """Fill in `run`; it ends within `max_run_s` whatever the model asks for. `installs`:
        the run's power over the room's behaviours, if it has any (never for a read grant).
        `view`: the room's strokes kept parsed (executes snapshot it and `view` draws from it rather
        than parse `doc()`). `context`: what the first request says about the room besides the
        prompt (its behaviours and how they went: `agent.hosting.outcomes`)."""
        if has_credentials():  # the client is made (the server's first run) before the run's clock starts, as it was at start-up
            with contextlib.suppress(Exception):  # a failure is reported by the run's first model call
                await self.client.get()
        try:
            async with asyncio.timeout(self.settings.max_run_s):
                return await self._run(run, name=name, doc=doc, commit=commit, quotas=quotas, installs=installs if run.grant == "write" else None,
                                       view=view, context=context)
        except TimeoutError:
            # A sandbox run in flight finishes on its thread within its own timeout; its
            # writes are dropped with the cancelled commit.
            return _fail(run, f"This run was stopped: it took longer than {self.settings.max_run_s:g} s, the bound on one agent run.")

    async def _run(self, run: AgentRun, *, name: str, doc: Callable[[], CanvasDoc], commit: Callable[[CanvasSession], None], quotas: Quotas | None,
                   installs: Installs | None, view: RoomView | None = None, context: str = "") -> AgentRun:
        s = self.settings
        run.status, run.started, run.model = "running", run.started or now_ms(), s.model
        if not has_credentials():
            return _fail(run, NO_KEY)
        may_install = installs is not None and installs.can_install
        system = system_prompt(name=name, room=run.room, grant=run.grant, behaviours=may_install)
        messages: list[dict[str, Any]] = [{"role": "user", "content": f"{run.author} asks: {run.prompt}" + (f"\n\n{context}" if context else "")}]
        seen: set[str] = set()  # the reference sections this run's conversation already holds (`Reference.search`)
        executed_ok = 0
        attempted = 0
        tool_calls = 0
        bounded = False
        reply = ""
        for _turn in range(s.max_turns):
            if run.tokens.input + run.tokens.output >= s.max_total_tokens:
                run.errors.append(f"token cap reached ({s.max_total_tokens} tokens per run)")
                break
            try:
                client = await self.client.get()
                forget_old_pictures(messages)
                resp = await client.messages.create(model=s.model, max_tokens=s.max_tokens, system=system, tools=tools(behaviours=may_install),
                                                           messages=messages)
            except Exception as e:
                return _fail(run, _describe_api_error(e))
            try:
                content = list(resp.content)
                usage = resp.usage
                run.tokens.input += int(getattr(usage, "input_tokens", 0) or 0)
                run.tokens.output += int(getattr(usage, "output_tokens", 0) or 0)
                run.tokens.turns += 1
                blocks = [_block(b) for b in content]
            except Exception as e:
                return _fail(run, f"The model sent a reply the agent could not read ({type(e).__name__}: {e}).")
            messages.append({"role": "assistant", "content": blocks})
            uses = [b for b in blocks if b.get("type") == "tool_use"]
            text = "\n".join(b.get("text", "") for b in blocks if b.get("type") == "text").strip()
            if not uses:
                reply = text
                break
            results = []
            for use in uses:
                if tool_calls >= s.max_tool_calls:
                    bounded = True  # every tool_use still gets a result, as the API requires
                    results.append({"type": "tool_result", "tool_use_id": use.get("id"), "content": "not run: tool-call bound reached", "is_error": True})
                    continue
                tool_calls += 1
                out, is_error = await self._tool(use, run, name=name, doc=doc, commit=commit, quotas=quotas, installs=installs, view=view,
                                                  seen=seen)
                if use.get("name") == "execute":
                    attempted += 1
                    executed_ok += 0 if is_error else 1
                results.append({"type": "tool_result", "tool_use_id": use.get("id"), "content": out, "is_error": is_error})
            messages.append({"role": "user", "content": results})
            if bounded:
                return _fail(run, f"This run was stopped: it asked for more than {s.max_tool_calls} tool calls, the bound on one agent run.")
        else:
            run.errors.append(f"turn cap reached ({s.max_turns} model calls per run)")
        if executed_ok:
            run.status = "done"  # something ran (later hiccups are in run.errors)
        elif attempted or run.errors or not reply:
            run.status = "failed"  # every program failed, the model misbehaved, or nothing came back
        else:
            run.status = "done"  # a plain answer, no code needed
        run.reply = reply or (run.errors[-1] if run.errors else "(no reply)")
        run.finished = now_ms()
        return run

    async def _tool(self, use: dict[str, Any], run: AgentRun, *, name: str, doc: Callable[[], CanvasDoc], commit: Callable[[CanvasSession], None],
                    quotas: Quotas | None, installs: Installs | None, view: RoomView | None = None,
                    seen: set[str] | None = None) -> tuple[Content, bool]:
        tool, args = use.get("name"), use.get("input")
        if not isinstance(args, dict):
            args = {}
        if tool == "search":
            q = args.get("query", "")
            if not isinstance(q, str):
                return _bad_input(run, "search needs {\"query\": string}")
            return self.code_mode.reference(run.grant, behaviours=installs is not None).search(q, seen=seen), False
        if tool == "execute":
            code = args.get("code")
            if not isinstance(code, str) or not code.strip():
                return _bad_input(run, "execute needs {\"code\": string} with a JavaScript program")
            if "on" in args or "name" in args or "rehearse" in args:
                return await self._install(run, code, args, installs)
            try:
                compact = await execute_in_run(self.code_mode, code, run, author=name, doc=doc, commit=commit, quotas=quotas,
                                               manage=installs.manage() if installs is not None else None, share=prompt_share(run.room), view=view,
                                               people=self.people)
            except OverBudget as e:  # the room's agent spent its share of the sandbox for the minute
                run.errors.append(f"execute #{len(run.code)}: busy: {e}")
                return json.dumps({"ok": False, "error": {"kind": "busy", "message": str(e)},
                                   "next": "Nothing ran. Reply without running code, or end the run and ask to be prompted again later."}), True
            return json.dumps(compact), not compact["ok"]
        if tool == "view":
            return await view_tool(args, run, view if view is not None else RoomView(doc()), self.renderer, prompt_share(run.room))
        return _bad_input(run, f"unknown tool {tool!r}; the tools are search, execute and view")

    async def _install(self, run: AgentRun, code: str, args: dict[str, Any], installs: Installs | None) -> tuple[str, bool]:
        """execute with `on`: run the program once and install it as a behaviour of the room."""
        if installs is None:
            why = ("it has read-only access to the room" if run.grant == "read" else
                   "behaviours live in the server's hosted agent, and this agent runs on its own")
            return _bad_input(run, f"this run cannot install behaviours: {why} (on and name are not available)")
        if not installs.can_install:
            return _bad_input(run, NO_INSTALLER)
        try:
            on = parse_triggers(args.get("on"))
            name = parse_name(args.get("name"), on)
        except BadInstall as e:
            return _bad_input(run, str(e))
        anyone = args.get("anyone", False)
        if not isinstance(anyone, bool):
            return _bad_input(run, "anyone must be true or false (true: a viewer's event may fire the behaviour with write)")
        if args.get("rehearse") is not None:
            return await self._rehearse(run, code, args["rehearse"], on, name, anyone, installs)
        run.code.append(code)
        try:
            compact, record = await installs.install(code, on, name, run_id=run.id, anyone=anyone)
        except Exception as e:
            log.exception("behaviour install failure")
            run.errors.append(f"install failure: {type(e).__name__}: {e}")
            return json.dumps({"ok": False, "error": {"kind": "internal", "message": str(e)}, "next": "Not installed. Try again."}), True
        run.keep_calls(record.calls)
        run.strokes.extend((compact.get("written") or {}).get("drawn", []))
        run.widgets.extend((compact.get("written") or {}).get("placed", []))
        if not compact["ok"]:
            err = compact["error"]
            run.errors.append(f"execute #{len(run.code)}: {err.get('kind')}: {err.get('message')}")
        return json.dumps(compact), not compact["ok"]


    async def _rehearse(self, run: AgentRun, code: str, value: Any, on: list[Trigger], name: str, anyone: bool, installs: Installs) -> tuple[str, bool]:
        """execute with `on` and `rehearse`: the behaviour on made-up events, against a copy of the room (one tool call of this run)."""
        try:
            events = parse_rehearsal(value, on)
        except BadInstall as e:
            return _bad_input(run, str(e))
        run.code.append(code)
        try:
            out = await installs.rehearse(code, on, name, events, share=prompt_share(run.room), anyone=anyone)
        except Exception as e:
            log.exception("behaviour rehearsal failure")
            run.errors.append(f"rehearsal failure: {type(e).__name__}: {e}")
            return json.dumps({"ok": False, "error": {"kind": "internal", "message": str(e)}, "next": "Nothing ran. Try again."}), True
        if not out["ok"]:
            failed = next((f for f in out.get("firings", []) if f.get("error")), None)
            why = failed["error"]["message"] if failed else (out.get("error") or {}).get("message", "not every firing ran")
            run.errors.append(f"execute #{len(run.code)}: rehearsal: {why}")
        return json.dumps(out), not out["ok"]


def prompt_share(room: str) -> Share:
    """Whose turn of the sandbox a prompt's executes take: the room's hosted agent, as one link
    of that room (prompts are already budgeted per asking link, `agent.limits.budget`, and a
    room runs one at a time)."""
    return Share(room, f"agent@{room}")


async def execute_in_run(code_mode: CodeMode, code: str, run: AgentRun, *, author: str, doc: Callable[[], CanvasDoc],
                         commit: Callable[[CanvasSession], None], quotas: Quotas | None = None,
                         manage: tuple[list[Binding], Callable[[], list[str]]] | None = None, share: Share = UNKEYED,
                         view: RoomView | None = None, people: People | None = None) -> dict[str, Any]:
    """One execute, recorded in `run` (its code, calls, strokes, erasures, errors): the model
    loop and MCP clients (`agent/mcp/peer.py`) share it, so their run records are alike.
    `manage`: the run's `behaviours.*` bindings and what applies their removals once the
    program has succeeded (`Installs.manage`). `share`: whose turn of the sandbox it takes
    (`agent.sandbox.fair`); `OverBudget` (nothing ran) is raised for the caller to say so.
    `view`: the room's strokes kept parsed (`RoomView`): the run's snapshot is a dict copy of it,
    with its encoded views, instead of a parse of `doc()`. `people`: who is in the room (`canvas.people()`).
    Returns the compact record the caller hands its model."""
    run.code.append(code)
    if view is not None:
        session = CanvasSession(view.snapshot(), author=author, run_id=run.id, grant=run.grant, quotas=quotas, views=view.views,
                                people=people, widgets=doc().widgets())
    else:
        session = CanvasSession.of(doc(), author=author, run_id=run.id, grant=run.grant, quotas=quotas, people=people)
    extra, removals = manage if manage is not None else ([], None)

    def _commit(sess: CanvasSession) -> None:
        commit(sess)
        run.strokes.extend(s.id for s in sess.added)
        run.erased.extend(sess.erased)
        run.widgets.extend(sess.widgets.made)

    try:
        compact, record = await code_mode.execute(code, session, _commit, extra, share)
        if record.ok and removals is not None and (removed := removals()):
            compact["removed"] = removed
    except OverBudget:
        raise
    except Exception as e:
        log.exception("sandbox failure")
        run.errors.append(f"sandbox failure: {type(e).__name__}: {e}")
        return {"ok": False, "error": {"kind": "internal", "message": str(e)}, "next": "Nothing was written. Try a simpler program."}
    run.keep_calls(record.calls)
    if not compact["ok"]:
        err = compact["error"]
        run.errors.append(f"execute #{len(run.code)}: {err.get('kind')}: {err.get('message')}")
    return compact


def _bad_input(run: AgentRun, msg: str) -> tuple[str, bool]:
    run.errors.append("malformed tool input: " + msg)
    return msg, True


def _block(b: Any) -> dict[str, Any]:
    """An SDK content block as a plain request dict (what we send back next turn)."""
    t = getattr(b, "type", None)
    if t == "text":
        return {"type": "text", "text": str(b.text)}
    if t == "tool_use":
        return {"type": "tool_use", "id": str(b.id), "name": str(b.name), "input": b.input if isinstance(b.input, dict) else {}}
    if hasattr(b, "model_dump"):
        return b.model_dump(exclude_none=True)
    raise TypeError(f"unexpected content block {b!r}")


def _describe_api_error(e: Exception) -> str:
    import anthropic

    if isinstance(e, anthropic.APIConnectionError):
        return f"The agent could not reach the model API ({os.environ.get('ANTHROPIC_BASE_URL') or 'api.anthropic.com'}): {type(e).__name__}. Try again later."
    if isinstance(e, anthropic.AuthenticationError):
        return "The model API rejected the agent's API key (ANTHROPIC_API_KEY)."
    if isinstance(e, anthropic.APIStatusError):
        return f"The model API answered with an error (HTTP {e.status_code}): {_short(str(e))}"
    if isinstance(e, anthropic.APIResponseValidationError | json.JSONDecodeError):
        return f"The model sent a reply the agent could not read ({type(e).__name__})."
    return f"The model call failed ({type(e).__name__}: {_short(str(e))})."


def _short(s: str, n: int = 300) -> str:
    return s if len(s) <= n else s[:n] + "…"


def _fail(run: AgentRun, msg: str) -> AgentRun:
    run.errors.append(msg)
    run.status, run.reply, run.finished = "failed", msg, now_ms()
    return run
