"""The hosted agent's `view` tool in a run: a picture of the room handed to the model as an image
block of its tool result, drawn fairly and within bounds.

Why its own module: the model loop only routes a tool call here. The tool itself (arguments,
description, drawing from a `RoomView` in a turn of a renderer) is `agent.contract.sight`, shared
with MCP clients; what is the run's is here: the Messages API envelope, the renderer the agent's
runs take turns of, and how many pictures a conversation keeps.

Bounds: a view is one tool call of the run (`AgentSettings.max_tool_calls`); it is drawn on the
agent plugin's renderer (`renderer()`: RENDERS threads, rooms round-robin, each room's agent one
link with RENDER_CPU_S CPU-seconds a minute; past it the tool result says when to retry), within
the renderer's own limits (`agent.contract.render`: size, points, its time limit) and VIEW_S
seconds in all. Each picture is at most `render.MAX_PNG_BYTES`; only the last PICTURES_KEPT stay in
the conversation (older ones become a line of text), so a run's requests stay far below the
Messages API's request size however often it looks.
"""

from __future__ import annotations

import json
from typing import Any

from agent.contract.room_view import RoomView
from agent.contract.sight import BadView, describe, look, parse_view, png_base64
from agent.runs.store import AgentRun
from agent.sandbox import FairPool, OverBudget, Share, Shares

RENDERS = 2
"""Threads drawing the hosted agent's views, all rooms together (as many as the MCP endpoint's renderer)."""
RENDER_CPU_S = 20.0
"""CPU-seconds of drawing one room's agent may take per minute (MCP's per-room default)."""
VIEW_S = 20.0
"""Seconds one view may take once its turn comes (the renderer stops drawing at `render.RENDER_S`)."""
PICTURES_KEPT = 3
"""Pictures kept in a run's conversation: older ones are replaced by a line saying so."""
FORGOTTEN = "(a picture shown earlier, no longer kept: view again to see it)"

Content = str | list[dict[str, Any]]


def renderer() -> FairPool:
    """The renderer every hosted agent's views take turns of (the agent plugin owns one)."""
    return FairPool(Shares(workers=RENDERS, link_turns=1, room_turns=1, link_cpu_s=RENDER_CPU_S, room_cpu_s=RENDER_CPU_S), name="renderer")


async def view_tool(args: dict[str, Any], run: AgentRun, view: RoomView, pool: FairPool, share: Share) -> tuple[Content, bool]:
    """`view` for a run: (the tool result's content, is_error). A refusal is a readable error."""
    try:
        box, px = parse_view(args)
    except BadView as e:
        run.errors.append(f"malformed tool input: {e}")
        return str(e), True
    try:
        picture = await look(view, box, px, pool, share, VIEW_S)
    except OverBudget as e:
        return f"not drawn: {e}", True
    except TimeoutError:
        return f"not drawn: the view took longer than {VIEW_S:g} s; ask for a smaller box or size", True
    return [{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png_base64(picture)}},
            {"type": "text", "text": json.dumps(describe(picture))}], False


def forget_old_pictures(messages: list[dict[str, Any]], keep: int = PICTURES_KEPT) -> None:
    """Replace every picture but the last `keep` in the conversation's tool results with a line of text."""
    seen = 0
    for message in reversed(messages):
        content = message.get("content")
        if message.get("role") != "user" or not isinstance(content, list):
            continue
        for block in content:
            inner = block.get("content") if isinstance(block, dict) and block.get("type") == "tool_result" else None
            if not isinstance(inner, list):
                continue
            for i, part in enumerate(inner):
                if isinstance(part, dict) and part.get("type") == "image":
                    seen += 1
                    if seen > keep:
                        inner[i] = {"type": "text", "text": FORGOTTEN}
