"""The 2026-07-28 revision (SEP-2575, stateless): requests with no session, each a place's work.

Why its own module: at this revision there is no `initialize` and no `Mcp-Session-Id`; every POST
carries its protocol version (header and `_meta`) and stands alone, and the SDK serves it
(`StreamableHTTPSessionManager.handle_request` routes a non-handshake `MCP-Protocol-Version` to its
single-exchange entry, under the same Host/Origin checks and body limit). What is ours is the
place the request is attributed to: the link's `Handle` in the room (`agent.mcp.occupants`),
opened by its first request under the same admission rules as a session (`agent.mcp.guard`),
kept while requests come, and ended by the endpoint's reaper after `idle_s` without one or when
the link lapses. Its peer (presence, cursor, run attribution) is the handle's, so one client's
requests are one agent in the room, however many connections they arrive on.

A request that is not a POST (a GET stream does not exist at this revision) reaches the SDK
without a place: it answers 405.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from agent.mcp.calls import CALLER
from agent.mcp.guard import principal, refusal, refuse_opening, refuse_place
from agent.mcp.occupants import Caller, Handle, HandleKey, Occupant
from agent.mcp.settings import McpLimits
from common.access import TokenInfo, token_of


class Handles:
    """The 2026-07-28 places: one per (link, room), opened by its first request."""

    def __init__(self, limits: McpLimits, sdk: ASGIApp, opened: Callable[[Occupant], None]) -> None:
        """`sdk`: the SDK's handler of every MCP request; `opened(handle)`: a new handle, to watch its link."""
        self.limits, self.sdk, self.opened = limits, sdk, opened
        self.held: dict[HandleKey, Handle] = {}

    def __len__(self) -> int:
        return len(self.held)

    def __iter__(self) -> Iterator[Handle]:
        return iter(list(self.held.values()))

    def pop(self, key: HandleKey) -> Handle | None:
        return self.held.pop(key, None)

    async def serve(self, scope: Scope, receive: Receive, send: Send, room: str, who: TokenInfo,
                    others: Callable[[], Iterable[Occupant]]) -> None:
        """Serve one stateless request in `room` from `who` (checked by the endpoint); `others()`: the
        places held otherwise (sessions), which count against the same bounds."""
        request = Request(scope, receive)
        handle = self.held.get((who.id, room))
        if handle is None and request.method == "POST":
            everyone = [*others(), *self.held.values()]
            if (full := refuse_place(self.limits, len(everyone))) is not None:
                return await refusal(503, full, headers={"Retry-After": "60"})(scope, receive, send)
            if (refused := refuse_opening(self.limits, everyone, {}, room, who)) is not None:
                return await refusal(429, refused, headers={"Retry-After": "60"})(scope, receive, send)
            handle = self.held[(who.id, room)] = Handle(room=room, who=who, token=token_of(request))
            self.opened(handle)
        scope["user"] = principal(room, who)
        scope[CALLER] = Caller(room, who, handle)
        if handle is None:  # not a POST: the SDK says why it is not served
            return await self.sdk(scope, receive, send)
        handle.begin()
        try:
            await self.sdk(scope, receive, send)
        finally:
            handle.end()
