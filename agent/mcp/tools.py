"""The MCP face of Code Mode: the tool list, the server's instructions, argument checks and
results. No HTTP or sessions here (`agent/mcp/endpoint.py`), no room (`agent/mcp/peer.py`).

Why derived, not written: `search` and `execute` are `codemode.TOOLS` (the names,
descriptions and argument schemas our own model is given) and the instructions are
`codemode.guide`, so an MCP client reads what our model reads. `view` is MCP's own; its
description quotes `agent/contract/render.py`'s limits.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import mcp_types as types
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent.contract.canvas import Box, Grant
from agent.contract.codemode import TOOLS, access, guide
from agent.contract.render import DEFAULT_PX, MAX_PNG_BYTES, MAX_PX, MIN_PX, POINT_BUDGET, RENDER_S, View

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
    + "\n\nCheck your work: view(box?, size?) returns a PNG of the room, or of a box of it."
)
"""What the client is told at initialize (the same for every room and token)."""


class ViewArgs(BaseModel):
    """`view`'s arguments (its input schema is generated from this model)."""

    model_config = ConfigDict(extra="forbid")
    box: Box | None = Field(default=None, description="the part of the canvas to show, {x0, y0, x1, y1} in canvas units "
                                                        "(y grows downwards); default: every stroke, with a margin")
    size: int = Field(default=DEFAULT_PX, ge=MIN_PX, le=MAX_PX, description=f"the image's longer side in pixels, {MIN_PX}-{MAX_PX}")


VIEW_DOC = (
    "Look at the room: a PNG of the canvas, or of a box of it, drawn on the server (strokes as polylines at their "
    f"colour and width on the page's background, then texts and buttons at their size), plus the canvas box it shows and how many canvas units one pixel is. "
    f"The image's longer side is `size` pixels (default {DEFAULT_PX}, at most {MAX_PX}); a picture past "
    f"{MAX_PNG_BYTES / 2**20:g} MiB or very busy is drawn smaller. Strokes are drawn through about one point per pixel "
    f"they travel, at most {POINT_BUDGET:,} points a picture (past it each stroke is thinned evenly), and drawing stops "
    f"after {RENDER_S:g} s (the answer's note says what was left out): view a box to see a busy part in detail. "
    "Use it after drawing to check your work."
)

READ_ONLY = types.ToolAnnotations(read_only_hint=True, open_world_hint=False)


class ToolError(ValueError):
    """A call the client must fix; the message says how."""


def tool_list(grant: Grant) -> list[types.Tool]:
    """What `tools/list` answers for a session with `grant`."""
    spec = {t["name"]: t for t in TOOLS}
    writes = grant == "write"
    return [
        types.Tool(name="search", description=spec["search"]["description"], input_schema=_schema(spec["search"], "query"),
                   annotations=READ_ONLY),
        types.Tool(name="execute", description=f"{spec['execute']['description']} This session's access: {access(grant)}",
                   input_schema=_schema(spec["execute"], "code"),
                   annotations=types.ToolAnnotations(read_only_hint=not writes, destructive_hint=writes, idempotent_hint=False,
                                                     open_world_hint=False)),
        types.Tool(name="view", description=VIEW_DOC, input_schema=_plain(ViewArgs.model_json_schema()), annotations=READ_ONLY),
    ]


def _plain(schema: dict[str, Any]) -> dict[str, Any]:
    """A pydantic schema as a tool's input schema: references inlined (not every client follows
    `$ref`), titles and the model's own docstring dropped (words the client pays for, unread)."""
    defs = schema.get("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return walk(defs[node["$ref"].rsplit("/", 1)[-1]])
            return {k: walk(v) for k, v in node.items() if k not in ("title", "$defs")}
        return [walk(v) for v in node] if isinstance(node, list) else node

    out: dict[str, Any] = walk(schema)
    out.pop("description", None)
    return out


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
    b = view.box
    about = {"box": {"x0": round(b.x0, 2), "y0": round(b.y0, 2), "x1": round(b.x1, 2), "y1": round(b.y1, 2)},
             "width": view.width, "height": view.height, "units_per_px": round(view.units_per_px, 4), "strokes": view.strokes,
             "widgets": view.widgets,
             "pixel": "canvas (x, y) is at pixel ((x - box.x0) / units_per_px, (y - box.y0) / units_per_px)"}
    if view.note:
        about["note"] = view.note
    return types.CallToolResult(content=[
        types.ImageContent(type="image", data=base64.b64encode(view.png).decode(), mime_type="image/png"),
        types.TextContent(type="text", text=json.dumps(about)),
    ])
