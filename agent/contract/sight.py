"""The `view` tool, defined once for every Code Mode client: its arguments, its description, how
a picture of the room is drawn in a fair turn of a renderer, and what is said about it.

Why its own module: the hosted agent's model (`agent.runs.loop`, as an image block of a Messages
API tool result) and MCP clients (`agent.mcp.tools`, as MCP image content) get the same tool, drawn
by the same renderer (`agent.contract.render`) from a room's `RoomView`, under the same limits; only
the envelope of the answer differs. The picture is for checking a drawing by eye; analysis stays
on the raw points (the guide says so).
"""

from __future__ import annotations

import base64
import functools
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent.contract.canvas import Box
from agent.contract.render import DEFAULT_PX, MAX_PNG_BYTES, MAX_PX, MIN_PX, POINT_BUDGET, RENDER_S, View, check_box, frame, render
from agent.contract.room_view import RoomView
from agent.sandbox import FairPool, Share
from canvas import BBox


class ViewArgs(BaseModel):
    """`view`'s arguments (its input schema is generated from this model)."""

    model_config = ConfigDict(extra="forbid")
    box: Box | None = Field(default=None, description="the part of the canvas to show, {x0, y0, x1, y1} in canvas units "
                                                        "(y grows downwards); default: every stroke, with a margin")
    size: int = Field(default=DEFAULT_PX, ge=MIN_PX, le=MAX_PX, description=f"the image's longer side in pixels, {MIN_PX}-{MAX_PX}")


VIEW_DOC = (
    "Look at the room: a PNG of the canvas, or of a box of it (strokes as polylines at their colour and width, then texts and "
    "buttons at their size), with the "
    f"box it shows and canvas units per pixel. `size`: the longer side in pixels (default {DEFAULT_PX}, at most {MAX_PX}). "
    f"A picture past {MAX_PNG_BYTES / 2**20:g} MiB or very busy is drawn smaller; at most {POINT_BUDGET:,} points are drawn "
    f"(past it strokes are thinned) and drawing stops after {RENDER_S:g} s (the note says what was left out): view a box "
    "to see a busy part in detail. Use it after drawing to check your work."
)


def plain_schema(schema: dict[str, Any]) -> dict[str, Any]:
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


VIEW_SCHEMA = plain_schema(ViewArgs.model_json_schema())
VIEW_TOOL: dict[str, Any] = {"name": "view", "description": VIEW_DOC, "input_schema": VIEW_SCHEMA}
"""`view` as a Messages API tool (the hosted agent's third tool, `codemode.tools`)."""

EXAMPLE = f'{{"box": {{"x0": 0, "y0": 0, "x1": 400, "y1": 300}}, "size": {DEFAULT_PX}}}'


class BadView(ValueError):
    """Arguments `view` cannot draw; the message says how to fix them."""


def parse_view(args: dict[str, Any]) -> tuple[BBox | None, int]:
    """The box (None: every stroke) and the size `args` ask for; raises `BadView`."""
    try:
        parsed = ViewArgs.model_validate(args)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(map(str, x['loc'])) or 'arguments'}: {x['msg']}" for x in e.errors())
        raise BadView(f"view arguments: {problems}. Example: {EXAMPLE}") from None
    box = BBox(parsed.box.x0, parsed.box.y0, parsed.box.x1, parsed.box.y1) if parsed.box else None
    if box is not None and (problem := check_box(box)):
        raise BadView(problem)
    return box, parsed.size


async def look(view: RoomView, box: BBox | None, px: int, renderer: FairPool, share: Share, timeout_s: float) -> View:
    """The room (or `box` of it) as a PNG, drawn on one of `renderer`'s threads in `share`'s turn
    (rooms take turns: `agent.sandbox.fair`) from what `view`'s index finds there (no parse of the
    room; the render's cost is bounded by its points and its time limit). Raises `OverBudget` (the
    share spent its render time for the minute) and TimeoutError (the drawing took over
    `timeout_s`; its thread keeps the share's turn until it ends)."""
    async with renderer.turn(share) as turn:
        around = view.extent()  # read when it is our turn: views waiting in line hold no list of strokes
        shown = frame([], box, around) if box is not None or around is not None else None
        strokes = view.query(shown)
        return await turn.run(functools.partial(render, strokes, box, px, around=around, widgets=view.widgets_in(shown)), timeout_s)


def describe(view: View) -> dict[str, Any]:
    """What is said beside the picture: the box it shows, its size, canvas units per pixel, the
    strokes drawn, and what it left out."""
    b = view.box
    about: dict[str, Any] = {"box": {"x0": round(b.x0, 2), "y0": round(b.y0, 2), "x1": round(b.x1, 2), "y1": round(b.y1, 2)},
                             "width": view.width, "height": view.height, "units_per_px": round(view.units_per_px, 4), "strokes": view.strokes,
                             "widgets": view.widgets,
                             "pixel": "canvas (x, y) is at pixel ((x - box.x0) / units_per_px, (y - box.y0) / units_per_px)"}
    if view.note:
        about["note"] = view.note
    return about


def png_base64(view: View) -> str:
    return base64.b64encode(view.png).decode()
