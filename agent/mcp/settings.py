"""What MCP clients may hold and do: the MCP endpoint's part of the settings.

Its own module, importing nothing but pydantic, so that `inhabit`'s commands can build their
flags from it without importing the MCP SDK (`endpoint` does, which takes most of a second).
"""

from __future__ import annotations

from pydantic import BaseModel

from common.settings import setting


class McpLimits(BaseModel):
    """What MCP clients may hold and do (`/rooms/NAME/mcp`: each session is a peer in its room)."""

    sessions: int = setting(64, "MCP sessions open at once, all rooms together (more: 503)", name="mcp_sessions", ge=1)
    room_sessions: int = setting(8, "MCP sessions open at once in one room (more: 429)", name="mcp_room_sessions", ge=1)
    token_sessions: int = setting(4, "MCP sessions one token may hold open in a room (more: 429)", name="mcp_token_sessions", ge=1)
    idle_s: float = setting(600.0, "seconds an MCP session may go without a request or open stream before it ends and its peer leaves",
                            name="mcp_idle_s", gt=0)
    calls_per_minute: int = setting(60, "MCP tool calls one token may make per minute in a room (more: a tool error saying when to retry)",
                                    name="mcp_calls_per_minute", ge=1)
    body_bytes: int = setting(256 * 1024, "largest MCP request body in bytes (bigger: 413)", name="mcp_body_bytes", ge=4096)
