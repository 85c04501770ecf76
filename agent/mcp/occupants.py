"""Who holds a place in a room over MCP: what presence, bounds and idling are keyed by.

Why its own module: the endpoint serves two protocol eras, and each has its own notion of a
client's place in a room, yet everything else (its peer in the room, one execute at a time, the
idle bound, the admission rules of `agent.mcp.guard`, ending when its link lapses) is the same:

- `Session`: the initialize-handshake era (up to 2025-11-25). The SDK mints a session id; the
  session is the place, and its peer leaves when the client ends it (DELETE) or it idles out.
- `Handle`: the 2026-07-28 revision (SEP-2575, stateless: no handshake, no session id, each
  request self-contained). The place is the link (the token's identity) in the room: every
  request of that link in that room is attributed to the one handle, and its peer leaves once it
  has gone `idle_s` without a request, or the link lapses. The revision's one server-minted value,
  `requestState` (SEP-2567), belongs to a single multi-round-trip request (input required), which
  our tools never ask for: it names no place to key by, so the link is the key. With `--open`
  there are no links (everyone is `OPEN`): a room's 2026-07-28 clients share one handle there.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio

from agent.contract.canvas import Grant
from agent.mcp.peer import McpPeer
from common.access import TokenInfo


@dataclass(kw_only=True, eq=False)
class Occupant:
    """A client's place in a room: whose it is, its peer there once joined, and how idle it is."""

    room: str
    who: TokenInfo
    token: str | None
    requests: int = 0
    """Its requests being served (other than GET streams): while any is, it is not idle."""
    idle_since: float = field(default_factory=time.monotonic)
    """When its last request (not a stream) started or ended."""
    peer: asyncio.Task[McpPeer] | None = None
    busy: asyncio.Lock = field(default_factory=asyncio.Lock)
    """Held by an execute: one program at a time per place."""
    unwatch: Callable[[], None] | None = None
    """Stops watching its link for revocation and expiry (set once it is watched)."""
    seen: set[str] = field(default_factory=set)
    """The reference sections its `search` calls already returned (sent again as one line)."""

    @property
    def grant(self) -> Grant:
        return "write" if self.who.role == "edit" else "read"

    @property
    def label(self) -> str:
        """How logs name it."""
        raise NotImplementedError

    def idle_for(self, now: float) -> float:
        return 0.0 if self.requests else now - self.idle_since

    def begin(self) -> None:
        self.requests += 1
        self.idle_since = time.monotonic()

    def end(self) -> None:
        self.requests -= 1
        self.idle_since = time.monotonic()


@dataclass(kw_only=True, eq=False)
class Session(Occupant):
    """One MCP session (handshake era), by the id the SDK minted."""

    id: str
    in_flight: set[anyio.CancelScope] = field(default_factory=set)
    """Its requests being served (an open stream included): ending the session cancels them."""
    link: Any = None
    """The SDK's `ServerSession` for it (from a handler's context): how the server pings it."""
    ping: asyncio.Task[None] | None = None

    @property
    def label(self) -> str:
        return f"session {self.id[:8]}"


HandleKey = tuple[str, str]
"""(the link's token id, the room)."""


@dataclass(kw_only=True, eq=False)
class Handle(Occupant):
    """One link's place in a room at the 2026-07-28 revision (no session: the link is the key)."""

    @property
    def key(self) -> HandleKey:
        return (self.who.id, self.room)

    @property
    def label(self) -> str:
        return f"link {self.who.id[:8]} in {self.room}"


@dataclass(frozen=True)
class Caller:
    """Who sent a request, as the endpoint checked it: its place, once it has one (a session
    being opened has none yet)."""

    room: str
    who: TokenInfo
    place: Occupant | None
