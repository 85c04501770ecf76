"""Who may open an MCP session, and from where: the endpoint's admission rules, apart from the endpoint.

Why its own module: sessions are a shared, bounded resource (each is a peer in a room, and the
SDK's table is server-wide), so the rules that keep one link from taking them all are one concept,
read and tested apart from the protocol plumbing in `endpoint`:

- a room holds `room_sessions`; one link (token) at most `token_sessions` of them; a room's view
  links together at most `viewers_cap()` (the rest is kept for its edit links);
- one link across all rooms (a `'*'` link too) at most `link_cap()`: `link_sessions`, and never
  more than a quarter of the server-wide `sessions`, so no single link can deny MCP to others.
  With `--open` there are no links (everyone is `OPEN`): only the room bounds apply.
- sessions and 2026-07-28 link handles together at most `sessions` (503; the SDK's own
  `max_sessions` backs it for sessions).

And from where: `transport_security` gives the SDK's DNS-rebinding protection the `Host` names
and origins of this server (`ServerSettings.trusted_hosts`, `.origins`): another `Host` gets 421,
another `Origin` 403.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

import mcp_types as types
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.transport_security import TransportSecuritySettings
from starlette.responses import Response

from agent.mcp.settings import McpLimits
from common.access import OPEN, TokenInfo

OpeningKey = tuple[str | None, str | None]
"""What a session being opened counts under: (room, None) the room, (room, id) the link in the room,
(room, "view") the room's viewers, (None, id) the link across rooms."""
VIEWERS = "view"


class Held(Protocol):
    """A session as admission sees it."""

    room: str
    who: TokenInfo


def opening_keys(room: str, who: TokenInfo) -> list[OpeningKey]:
    keys: list[OpeningKey] = [(room, None), (room, who.id)]
    if who.role == "view":
        keys.append((room, VIEWERS))
    if who.id != OPEN.id:
        keys.append((None, who.id))
    return keys


def refuse_opening(limits: McpLimits, sessions: Iterable[Held], opening: dict[OpeningKey, int], room: str, who: TokenInfo) -> str | None:
    """Why `who` may not open another session in `room` now (the 429's message), or None."""
    held = list(sessions)
    wait = f"end one (clients do when they exit) or wait: a session without requests ends after {limits.idle_s:g} s"
    in_room = sum(s.room == room for s in held) + opening.get((room, None), 0)
    if in_room >= limits.room_sessions:
        return f"this room already has {in_room} MCP sessions open, the most it takes; {wait}"
    mine = sum(s.room == room and s.who.id == who.id for s in held) + opening.get((room, who.id), 0)
    if mine >= limits.token_sessions:
        return f"this token already holds {mine} of the {limits.token_sessions} MCP sessions one token may open in this room; {wait}"
    if who.role == "view":
        viewers = sum(s.room == room and s.who.role == "view" for s in held) + opening.get((room, VIEWERS), 0)
        if viewers >= limits.viewers_cap():
            return (f"view links hold {viewers} of this room's MCP sessions, the most they may (the rest is kept for edit links); "
                    f"{wait}")
    if who.id != OPEN.id:
        everywhere = sum(s.who.id == who.id for s in held) + opening.get((None, who.id), 0)
        if everywhere >= limits.link_cap():
            return f"this token already holds {everywhere} MCP sessions across rooms, the most one link may; {wait}"
    return None


def refuse_place(limits: McpLimits, held: int) -> str | None:
    """Why no new place (a session, or a 2026-07-28 link handle) may be opened anywhere now (the 503's
    message), or None: sessions and handles together are bounded by `sessions`."""
    if held >= limits.sessions:
        return (f"this server holds {held} MCP clients, the most it takes ({limits.sessions}); try again once one has left "
                f"(a client without requests leaves after {limits.idle_s:g} s)")
    return None


def refusal(status: int, message: str, *, code: int = types.INVALID_REQUEST, data: Any = None,
            headers: dict[str, str] | None = None) -> Response:
    """A JSON-RPC error body (the SDK's client shows its message) at an HTTP status."""
    detail = types.ErrorData(code=code, message=message, **({"data": data} if data is not None else {}))
    error = types.JSONRPCError(jsonrpc="2.0", id=None, error=detail)
    return Response(error.model_dump_json(by_alias=True, exclude_unset=True), status_code=status, media_type="application/json",
                    headers=headers)


def principal(room: str, who: TokenInfo) -> AuthenticatedUser:
    """Who the SDK binds a request (and a session) to: the token (by id) in the room."""
    return AuthenticatedUser(AccessToken(token=who.id, client_id=who.id, scopes=[who.role], subject=room))


def transport_security(server: Any) -> TransportSecuritySettings:
    """The SDK's Host/Origin checks for `server` (a `server.settings.ServerSettings`, typed loosely:
    the agent does not import the server): this server's names on any port, and its origins."""
    hosts = sorted(server.trusted_hosts)
    return TransportSecuritySettings(enable_dns_rebinding_protection=True,
                                     allowed_hosts=[*hosts, *(f"{h}:*" for h in hosts)],
                                     allowed_origins=sorted({*server.origins, *(f"{scheme}://{h}:*" for h in hosts
                                                                               for scheme in ("http", "https")),
                                                             *(f"{scheme}://{h}" for h in hosts for scheme in ("http", "https"))}))
