"""What MCP clients may hold and do: the MCP endpoint's part of the settings.

Its own module, importing nothing but pydantic, so that `inhabit`'s commands can build their
flags from it without importing the MCP SDK (`endpoint` does, which takes most of a second).
"""

from __future__ import annotations

from pydantic import BaseModel

from common.settings import setting


class McpLimits(BaseModel):
    """What MCP clients may hold and do (`/rooms/NAME/mcp`: each session is a peer in its room)."""

    sessions: int = setting(64, "MCP sessions open at once, all rooms together, a 2026-07-28 client's link in a room counting as "
                            "one (more: 503); one link (token) holds at most a quarter of them (at least 1)", name="mcp_sessions", ge=1)
    room_sessions: int = setting(8, "MCP sessions open at once in one room (more: 429); view links together hold at most this "
                                 "minus --mcp-token-sessions (at least 1): the rest is kept for edit links", name="mcp_room_sessions", ge=1)
    token_sessions: int = setting(4, "MCP sessions one token may hold open in a room (more: 429)", name="mcp_token_sessions", ge=1)
    link_sessions: int = setting(8, "MCP sessions one token may hold open in all rooms together (a '*' link too), and never more than "
                                 "a quarter of --mcp-sessions (more: 429)", name="mcp_link_sessions", ge=1)
    idle_s: float = setting(600.0, "seconds an MCP session (or a 2026-07-28 client's link in a room) may go without a request before it "
                            "ends and its peer leaves (an open stream does not count: the server pings through it, and a client that reads it answers, which is a request)",
                            name="mcp_idle_s", gt=0)
    calls_per_minute: int = setting(60, "MCP tool calls one token may make per minute in a room (more: a tool error saying when to retry)",
                                    name="mcp_calls_per_minute", ge=1)
    body_bytes: int = setting(256 * 1024, "largest MCP request body in bytes (bigger: 413)", name="mcp_body_bytes", ge=4096)
    render_link_cpu_s: float = setting(10.0, "CPU-seconds of drawing one link's MCP views may take per minute, all rooms together "
                                       "(more: a tool error saying when to retry)", name="render_link_cpu_s", gt=0)
    render_room_cpu_s: float = setting(20.0, "CPU-seconds of drawing the MCP views of one room may take per minute (more: a tool "
                                       "error saying when to retry)", name="render_room_cpu_s", gt=0)
    render_s: float = setting(20.0, "seconds one MCP view may take to draw once its turn comes (more: a tool error)", name="render_s", gt=0)

    def link_cap(self) -> int:
        """Sessions one link may hold across rooms: its own bound, and a fair part of the server's."""
        return min(self.link_sessions, max(1, self.sessions // 4))

    def viewers_cap(self) -> int:
        """Sessions a room's view links may hold together (the rest of the room is kept for edit links)."""
        return max(1, self.room_sessions - self.token_sessions)
