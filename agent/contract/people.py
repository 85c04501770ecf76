"""Who is in the room now: `canvas.people()`, read from presence, and what the names the model
sees elsewhere (a stroke's `author`, `event.by`, a chat line's `author`) hold.

Why its own module: the model otherwise guesses who is here from chat lines ("Sam asks: …") and
cannot tell a viewer from an editor. Presence (awareness) states are written by peers, but the
server vouches for their `user.kind` (`server.attribution.presence_as`: only its own peers may
show "agent" or "mcp"), and it says whose connection holds each presence client id, with that
link's role (`server.plugin.Host.presence_of`). `people_of` joins the two; the peer that reads
presence (the hosted agent's websocket client) hands a run or a firing a `People` callable, so a
firing reads presence at its own time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, Field

from agent.sandbox import Capability
from common.actor import Actor, Role
from wire.client import CanvasClient

PersonKind = Literal["human", "agent", "mcp"]

WHO_IS_WHO = (
    "Names you see: a stroke's `author` and a chat line's `author` are the display name the writer's page or client gave "
    "(people choose it; the server does not check it). A chat line's `kind` 'agent' is the server's word (only its agent and "
    "MCP clients may write it); a stroke's `kind`, `run` and `behaviour` are what its writer set. In a behaviour, `event.by` is "
    "a display name and `event.actor` is who caused it as the server knows them: `id` (their link's token id, null where the "
    "server cannot say), `name`, `kind`, `role`."
)
"""What the model is told about names and identities (the canvas docs `search` returns)."""


class Cursor(BaseModel):
    x: float
    y: float


class Person(BaseModel):
    """One peer present in the room (a browser tab, the agent, an MCP client)."""

    name: str = Field(description="display name shown in presence (chosen by the person)")
    kind: PersonKind = Field(description="human; agent (the server's hosted agent); mcp (an MCP client's session): the server's word")
    role: Role | None = Field(description="edit (may draw) or view (read only), from their link as the server knows it; null: not known")
    id: str | None = Field(default=None, description="their link's token id, where the server knows it")
    color: str | None = Field(default=None, description="their cursor colour, #rrggbb")
    cursor: Cursor | None = Field(default=None, description="where their pointer is, in canvas units (null: off the canvas)")
    you: bool = Field(default=False, description="true for the agent running this program")


class PeopleParams(BaseModel):
    pass


PEOPLE_CAP = Capability(
    name="canvas.people",
    params=PeopleParams,
    returns=list[Person],
    doc="Everyone in the room now, from presence (you first): display name, kind (human, agent, mcp), role (edit, or view: "
    "read only; null if the server cannot say), link id, colour and cursor position. In a behaviour it is read when the firing "
    "runs. " + WHO_IS_WHO,
    example="const editors = canvas.people().filter(p => p.role === 'edit' && !p.you).map(p => p.name);",
)

People = Callable[[], list[dict[str, Any]]]
"""What a run or a firing is handed to answer `canvas.people()`: presence read at call time."""

KINDS: frozenset[str] = frozenset({"human", "agent", "mcp"})


def person(state: Any, actor: Actor | None, *, you: bool = False, role: Role | None = None) -> dict[str, Any] | None:
    """One awareness `state` as a `Person` (JSON), or None if it shows no user (a hidden reader, a
    peer that has not announced itself). `actor`: the server's word on its connection."""
    user = state.get("user") if isinstance(state, dict) else None
    if not isinstance(user, dict):
        return None
    kind = user.get("kind")
    cursor = state.get("cursor")
    out: dict[str, Any] = {
        "name": str(user.get("name") or (actor.name if actor else "someone"))[:80],
        "kind": kind if kind in KINDS else "human",  # the server rewrote anything else to "human" already
        "role": actor.role if actor is not None else role,
        "id": actor.id if actor is not None else None,
        "color": user.get("color") if isinstance(user.get("color"), str) else None,
        "cursor": None,
        "you": you,
    }
    if isinstance(cursor, dict) and isinstance(cursor.get("x"), int | float) and isinstance(cursor.get("y"), int | float):
        out["cursor"] = {"x": float(cursor["x"]), "y": float(cursor["y"])}
    return out


def people_of(own_id: int, own_state: Any, others: Mapping[int, Any], whose: Callable[[int], Actor | None], *,
              own_role: Role | None = None) -> list[dict[str, Any]]:
    """Everyone present: the reading peer first (`own_role` if the server cannot say), then the
    others by name. `whose(client id)`: the server's word on a presence client id (None: it
    cannot say, e.g. a connection to another node of a cluster)."""
    me = person(own_state, whose(own_id), you=True, role=own_role)
    rest = [p for cid, st in others.items() if (p := person(st, whose(cid))) is not None]
    rest.sort(key=lambda p: (p["name"].lower(), p["kind"]))
    return ([me] if me is not None else []) + rest


def people_in(client: CanvasClient, whose: Callable[[int], Actor | None]) -> list[dict[str, Any]]:
    """Everyone `client` (the reading peer) sees in its room now, itself first."""
    return people_of(client.client_id, client.local_awareness(), client.awareness(), whose,
                     own_role="view" if client.read_only else "edit")
