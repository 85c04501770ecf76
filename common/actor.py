"""Who did something, as the server knows it — never as a peer wrote it.

Why a model of its own: authority is the intersection of everyone in the causal chain. A
behaviour firing on a viewer's event acts with at most a viewer's grant, an `ask()` from it wakes
a read-only run, and a chat line or a presence state claiming to be the agent's is believed only
when the server made it. Every event, run and firing carries the `Actor` behind it, taken from
the connection's token (or the server's own peers), so the rule can be applied in one place.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

ActorKind = Literal["human", "agent", "behaviour", "mcp"]
Role = Literal["view", "edit"]


class Actor(BaseModel):
    """One link (or one of the server's own peers) acting in a room."""

    id: str | None = Field(default=None, description="the token id of the link (None: an open server, or not known)")
    name: str = Field(description="display name")
    kind: ActorKind = Field(default="human", description="human; agent (the server's hosted agent); behaviour; mcp (an MCP client's session)")
    role: Role = Field(description="what the link may do: edit, or view (read only)")

    @property
    def may_edit(self) -> bool:
        return self.role == "edit"


def weakest(*roles: Role) -> Role:
    """The intersection of roles along a causal chain: view if anyone in it could only view."""
    return "view" if "view" in roles else "edit"
