"""The MCP face of Code Mode: the tool list, the server's instructions, argument checks and
results. No HTTP or sessions here (`agent/mcp/endpoint.py`), no room (`agent/mcp/peer.py`).

Why derived, not written: `search` and `execute` are `codemode.TOOLS` (the names,
descriptions and argument schemas our own model is given) and the instructions are
`codemode.guide`, so an MCP client reads what our model reads. `view` is `agent.contract.sight`'s,
the hosted agent's third tool too; its description quotes `agent/contract/render.py`'s limits. For an edit link, `execute` also takes
`on`, `name`, `anyone` (and `rehearse`) as the built-in agent's does when it may install
behaviours (`codemode.tools(behaviours=True)`), and `search` lists the behaviour guide.
"""

from __future__ import annotations

import json
from typing import Any

import mcp_types as types
from pydantic import BaseModel, ValidationError

from agent.contract.canvas import Grant
from agent.contract.codemode import access, guide, tools
from agent.contract.events import BadInstall, Trigger, parse_name, parse_triggers
from agent.contract.render import DEFAULT_PX, View
from agent.contract.sight import VIEW_DOC, VIEW_SCHEMA, ViewArgs, describe, png_base64

SERVER_NAME = "inhabit"
MAX_CODE = 32_000
"""Characters in one program: compute points in code rather than pasting them (each program
is kept in its run record, shown in the room's chat)."""
MAX_QUERY = 500

INSTRUCTIONS = (
    "You are an agent peer in a room of inhabit, a shared multiplayer drawing canvas. People in the room see you in "
    "their presence list, your cursor where you draw, and each program that changes the room as a card in their chat "
    "(its code, its calls and an \"Undo run\" button).\n\n"
    + guide("set by the token this client connected with: an edit token reads and writes (canvas.draw, canvas.erase, "
            "canvas.say), a view token only reads. The execute tool's description says which this session has.")
    + "\n\nBehaviours (edit tokens): to keep acting after this call (play a game, keep a rule, redraw on a schedule), give "
      "execute `on` and a `name`: the program runs now, then by itself on every matching event, with no further call. "
      "Search 'behaviour' first."
)
"""What the client is told at initialize (the same for every room and token)."""


BEHAVIOURS_OVER_MCP = (
    "With `on` (and `name`) it is installed as a behaviour of the room: it acts with this token's authority (its installer, "
    "shown on its card; revoking the token pauses it), within the room's bounds on behaviours; people pause or remove it on "
    "its card. The same name replaces it. behaviours.list/remove are not available over MCP."
)
"""What `execute`'s description adds for an edit link (its input schema has `on`, `name`, `anyone`, `rehearse`)."""

READ_ONLY = types.ToolAnnotations(read_only_hint=True, open_world_hint=False)


class ToolError(ValueError):
    """A call the client must fix; the message says how."""


INSTALL_ARGS = ("on", "name", "anyone", "rehearse")


def tool_list(grant: Grant) -> list[types.Tool]:
    """What `tools/list` answers for a session with `grant` (an edit link's `execute` installs behaviours too)."""
    writes = grant == "write"
    spec = {t["name"]: t for t in tools(behaviours=writes)}
    execute = spec["execute"]  # an edit link's has on, name, anyone and rehearse (`agent.contract.behaviour.EXECUTE_PROPS`)
    about = f"{execute['description']} This session's access: {access(grant)}" + (f" {BEHAVIOURS_OVER_MCP}" if writes else "")
    return [
        types.Tool(name="search", description=spec["search"]["description"], input_schema=_schema(spec["search"], "query"),
                   annotations=READ_ONLY),
        types.Tool(name="execute", description=about,
                   input_schema=_schema(execute, "code", *(INSTALL_ARGS if writes else ())),
                   annotations=types.ToolAnnotations(read_only_hint=not writes, destructive_hint=writes, idempotent_hint=False,
                                                     open_world_hint=False)),
        types.Tool(name="view", description=VIEW_DOC, input_schema=VIEW_SCHEMA, annotations=READ_ONLY),
    ]


def _schema(tool: dict[str, Any], *served: str) -> dict[str, Any]:
    """`tool`'s input schema with only the arguments MCP serves: one codemode adds later is not
    offered to MCP clients until this module handles it."""
    schema = tool["input_schema"]
    return {**schema, "properties": {k: v for k, v in schema["properties"].items() if k in served},
            "required": [k for k in schema.get("required", []) if k in served]}


# ---- arguments ---------------------------------------------------------------------------


def query_arg(args: dict[str, Any]) -> str:
    query = args.get("query", "")
    if not isinstance(query, str):
        raise ToolError('search needs {"query": string}, e.g. {"query": "draw"}')
    return query[:MAX_QUERY]


def code_arg(args: dict[str, Any]) -> str:
    code = args.get("code")
    if not isinstance(code, str) or not code.strip():
        raise ToolError('execute needs {"code": string} with a JavaScript program')
    if len(code) > MAX_CODE:
        raise ToolError(f"the program is {len(code)} characters; at most {MAX_CODE}. Compute points in code instead of "
                        "listing them, or split the work over several executes.")
    return code


class InstallPlan(BaseModel):
    """`execute`'s install arguments, checked (the same rules as the built-in agent's: `agent.runs.loop._install`)."""

    on: list[Trigger]
    name: str
    anyone: bool = False
    rehearse: list[dict[str, Any]] | None = None


def install_args(args: dict[str, Any]) -> InstallPlan | None:
    """`on`/`name`/`anyone`/`rehearse` checked, or None: a plain execute (neither `on` nor `name` given)."""
    if "on" not in args and "name" not in args:
        if "rehearse" in args or "anyone" in args:
            raise ToolError("rehearse and anyone go with on (the triggers of the behaviour to install or rehearse)")
        return None
    try:
        on = parse_triggers(args.get("on"))
        name = parse_name(args.get("name"), on)
    except BadInstall as e:
        raise ToolError(str(e)) from None
    anyone = args.get("anyone", False)
    if not isinstance(anyone, bool):
        raise ToolError("anyone must be true or false (true: a viewer's event may fire the behaviour with write)")
    rehearse = args.get("rehearse")
    if rehearse is not None and not (isinstance(rehearse, list) and all(isinstance(e, dict) for e in rehearse)):
        raise ToolError("rehearse must be a list of made-up events, e.g. [{\"type\": \"stroke\", \"strokes\": [{\"points\": [[0, 0], [9, 9]]}]}]")
    return InstallPlan(on=on, name=name, anyone=anyone, rehearse=rehearse)


def view_args(args: dict[str, Any]) -> ViewArgs:
    try:
        return ViewArgs.model_validate(args)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(map(str, x['loc'])) or 'arguments'}: {x['msg']}" for x in e.errors())
        raise ToolError(f"view arguments: {problems}. Example: {{\"box\": {{\"x0\": 0, \"y0\": 0, \"x1\": 400, \"y1\": 300}}, "
                        f"\"size\": {DEFAULT_PX}}}") from None


# ---- results -------------------------------------------------------------------------------


def text_result(value: Any, *, error: bool = False) -> types.CallToolResult:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=error)


def image_result(view: View) -> types.CallToolResult:
    return types.CallToolResult(content=[
        types.ImageContent(type="image", data=png_base64(view), mime_type="image/png"),
        types.TextContent(type="text", text=json.dumps(describe(view))),
    ])
