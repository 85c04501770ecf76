"""`/rooms/{name}/mcp`: any MCP client joins a room as an agent peer, through Code Mode.

The official SDK does the protocol: its `StreamableHTTPSessionManager` (run in the server's
lifespan through the Plugin hooks) and its lowlevel `Server` (tools/list, tools/call; the
lowlevel one because the tool list depends on the session's grant). Around it, one ASGI
endpoint adds what is ours:

- Auth: the room token (`Authorization: Bearer`, or `?token=`), by `common.access.room_of` like every
  route; 401 says why. The SDK also binds each session to the credential that opened it (we
  hand it the token id and the room as its principal): a session id is no use to another
  token or in another room.
- Both protocol eras. Handshake (up to 2025-11-25): a session is what a peer's presence lasts
  as long as. 2026-07-28 (stateless, no session): a request is the work of its link's `Handle`
  in the room (`agent.mcp.stateless`), whose peer lasts until `idle_s` without a request.
  Presence, bounds and run attribution are keyed by the place (`agent.mcp.occupants`), never by
  a connection. The tools themselves are `agent.mcp.calls`.
- Where from: the SDK's transport security checks `Host` (421) and `Origin` (403) against this
  server's names (`guard.transport_security`), before anything else: a DNS-rebinding page
  reaches nothing.
- Bounds (`McpLimits`, `agent.mcp.settings`; who may open a place: `agent.mcp.guard`): places
  (sessions and 2026-07-28 handles together) per room, per token in a room, for a room's view
  links, per token across rooms (429), overall (503), the request body (the SDK: 413), tool
  calls per token per minute (a tool error saying when to retry), one execute at a time per place.
- Fair shares (`agent.sandbox.fair`): executes take turns of the agent's sandbox (shared with
  prompts and behaviours) and views turns of a two-thread renderer, rooms round-robin, then the
  links in a room; a link (its token id; a `'*'` link once across rooms) and a room each have a
  cap on turns held and a CPU budget per minute, past which the call is a tool error saying when
  to retry. A render has a time limit (`--render-s`).
- Lifetime: a 2026-07-28 handle's peer joins at its first tools/list or call and leaves after
  `idle_s` without a request or once its link lapses. A session's peer joins when the client says it is initialized (or at its first
  call) and leaves when the client ends the session (DELETE), once it has gone `idle_s`
  without a request, or once its token is revoked or expires. An open GET stream does not
  count as a request (one that nobody reads must not hold a session for good): half-way
  through the idle period the server pings through it, and a client that reads its stream
  answers, which is a request. A session ended here is ended in the SDK too (a DELETE of our
  own), so it frees its place at once, and its open streams end. A session whose token is revoked or expires
  ends within a second or so: the process's watcher of links (`Host.lapses`, `common.lapses`) says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Iterator
from typing import Any, Protocol

import anyio
import mcp_types as types
from mcp.server.lowlevel.server import Server
from mcp.server.streamable_http import MCP_SESSION_ID_HEADER
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecurityMiddleware
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS
from starlette.requests import Request
from starlette.routing import BaseRoute, Route
from starlette.types import Message, Receive, Scope, Send

from agent.contract.codemode import CodeMode
from agent.mcp.calls import CALLER, ToolCalls, caller_of, client_info
from agent.mcp.guard import OpeningKey, opening_keys, principal, refusal, refuse_opening, refuse_place, transport_security
from agent.mcp.occupants import Caller, Handle, Occupant, Session
from agent.mcp.peer import Installing, McpPeer
from agent.mcp.settings import McpLimits
from agent.mcp.shared import SharedRooms
from agent.mcp.stateless import Handles
from agent.mcp.tools import INSTRUCTIONS, SERVER_NAME, ToolError
from agent.runs.http import clean_name
from agent.runs.store import RunStore
from agent.sandbox import FairPool, Sandbox, Share, Shares
from common.access import Access, Denied, TokenError, room_of, token_of
from common.lapses import Lapses

log = logging.getLogger("inhabit.mcp")

RENDERS = 2
"""Threads that draw `view`s, all rooms together (a render is mostly Python and PIL: the GIL)."""


class RunKeeper(Installing, Protocol):
    """Where MCP runs are recorded: the hosted agent's run store (`AgentPlugin`), so that
    `GET /runs` and "Undo run" serve them like the agent's own; and where an MCP client's
    behaviours are installed (`install`: wherever the room's behaviours are held)."""

    runs: RunStore
    sandbox: Sandbox
    """The server's sandbox, shared fairly (`agent.sandbox.fair`) by prompts, behaviours and MCP executes."""

    def release(self, room: str) -> None:
        """The last MCP client left `room`: its records may leave memory."""
        ...


class _Endpoint:
    """A Starlette route target that is an ASGI app (a bound method would be wrapped as a request handler)."""

    def __init__(self, plugin: McpPlugin) -> None:
        self.plugin = plugin

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.plugin.serve(scope, receive, send)


class McpPlugin:
    """The MCP endpoint as a `server.plugin.Plugin`."""

    def __init__(self, keeper: RunKeeper, limits: McpLimits | None = None) -> None:
        self.keeper = keeper
        self.limits = limits or McpLimits()
        self.sessions: dict[str, Session] = {}
        self._opening: dict[OpeningKey, int] = {}  # sessions being opened, by what they count under (`guard`)
        self.renderer = FairPool(Shares(workers=RENDERS, link_turns=1, room_turns=1, link_cpu_s=self.limits.render_link_cpu_s,
                                        room_cpu_s=self.limits.render_room_cpu_s), name="renderer")
        self.code_mode = CodeMode(keeper.sandbox)  # the keeper's: it closes it
        self.calls = ToolCalls(self.limits, self.code_mode, self.renderer, keeper, self._peer, self._share)
        self.server: Server[Any] = Server(SERVER_NAME, instructions=INSTRUCTIONS, on_list_tools=self.calls.list_tools,
                                          on_call_tool=self.calls.call_tool)
        self.server.add_notification_handler("notifications/initialized", types.NotificationParams, self._on_initialized)
        self.manager = StreamableHTTPSessionManager(self.server, json_response=True, session_idle_timeout=self.limits.idle_s,
                                                    max_request_body_size=self.limits.body_bytes, max_sessions=self.limits.sessions)
        self.handles = Handles(self.limits, self.manager.handle_request, self._watch)
        """The 2026-07-28 clients' places (a link in a room), beside the handshake era's sessions."""
        self._lifespan = contextlib.AsyncExitStack()
        self._reaper: asyncio.Task[None] | None = None
        self._ws_base = ""
        self._access: Access | None = None
        self._lapses: Lapses | None = None
        self._ending: set[asyncio.Task[None]] = set()  # places being ended because their link lapsed
        self._security = TransportSecurityMiddleware()  # startup sets this server's names
        self._internal_host = "127.0.0.1"
        self._host: Any = None
        self.shared = SharedRooms("", lambda room: None)
        """The room copies this node's sessions share (one per room; `startup` points it at the server)."""
        self.routes: list[BaseRoute] = [Route("/rooms/{name}/mcp", endpoint=_Endpoint(self))]

    # the Plugin interface ----------------------------------------------------------------

    async def startup(self, host: Any) -> None:
        """`host` is a `server.plugin.Host` (typed loosely: the agent does not import the server)."""
        self._ws_base = host.settings.internal_ws
        self._host = host
        self._access = None if host.settings.open else host.access
        self._lapses = None if host.settings.open else host.lapses
        access = self._access
        self.shared = SharedRooms(self._ws_base, lambda room: access.mint(room, "view") if access is not None else None)
        self.manager.security_settings = transport_security(host.settings)  # read by each session's transport
        self._security = TransportSecurityMiddleware(self.manager.security_settings)
        self._internal_host = host.settings.loopback_host
        await self._lifespan.enter_async_context(self.manager.run())
        self._reaper = asyncio.create_task(self._reap())

    async def shutdown(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
        for sid in list(self.sessions):
            await self._end(sid, forget=False)  # the SDK's sessions end with its manager
        for handle in self.handles:
            await self._end_handle(handle)
        await self._lifespan.aclose()
        self.renderer.close()
        await self.shared.close()

    def gauges(self) -> dict[str, tuple[float, str]]:
        return {
            "mcp_sessions": (len(self.sessions), "MCP sessions open (each is a peer in its room once joined)."),
            "mcp_handles": (len(self.handles), "MCP 2026-07-28 clients' places open, one per link and room (each a peer once joined)."),
            "mcp_rate_keys": (len(self.calls.rate), "MCP tool-call rate-limit buckets held in memory."),
            "mcp_renders_waiting": (self.renderer.load()[1], "MCP views waiting for their room's and link's turn of the renderer."),
            "mcp_shared_rooms": (len(self.shared), "Rooms whose one shared copy this node's MCP sessions read."),
        }

    # the endpoint ------------------------------------------------------------------------

    async def serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        if (foreign := await self._security.validate_request(request)) is not None:  # Host 421, Origin 403: the SDK's answer
            return await foreign(scope, receive, send)
        try:
            room, who = room_of(request)
        except Denied as e:  # answered in JSON-RPC's error shape, which MCP clients show
            headers = {"WWW-Authenticate": 'Bearer realm="inhabit"'} if e.status == 401 else None
            return await refusal(e.status, e.message, headers=headers)(scope, receive, send)
        version = request.headers.get("mcp-protocol-version")
        if version in MODERN_PROTOCOL_VERSIONS:  # 2026-07-28: no session, the link's place in the room
            return await self.handles.serve(scope, receive, send, room, who, lambda: self.sessions.values())
        if version is not None and version not in HANDSHAKE_PROTOCOL_VERSIONS:
            return await refusal(400, f"protocol version {version} is not served here", code=types.UNSUPPORTED_PROTOCOL_VERSION,
                                 data={"supported": [*HANDSHAKE_PROTOCOL_VERSIONS, *MODERN_PROTOCOL_VERSIONS],
                                       "requested": version})(scope, receive, send)
        sid = request.headers.get(MCP_SESSION_ID_HEADER)
        session = self.sessions.get(sid) if sid is not None else None
        if sid is not None and (session is None or session.room != room or session.who.id != who.id):
            return await refusal(404, "no such MCP session here (it ended, or was opened with another token or room): "
                                      "initialize a new one")(scope, receive, send)
        opening = opening_keys(room, who) if sid is None and request.method == "POST" else []
        if opening and (full := refuse_place(self.limits, len(self.sessions) + len(self.handles))):
            return await refusal(503, full, headers={"Retry-After": "60"})(scope, receive, send)
        if opening and (refused := refuse_opening(self.limits, self._places(), self._opening, room, who)):
            return await refusal(429, refused, headers={"Retry-After": "60"})(scope, receive, send)
        scope["user"] = principal(room, who)
        scope[CALLER] = Caller(room, who, session)

        response = {"started": False, "ended": False}

        async def send_and_register(message: Message) -> None:
            if message["type"] == "http.response.start":
                response["started"] = True
                new_id = dict(message.get("headers", [])).get(MCP_SESSION_ID_HEADER.encode())
                if opening and new_id and message["status"] < 400:
                    self._opened(Session(id=new_id.decode(), room=room, who=who, token=token_of(request)))
            response["ended"] = message["type"] == "http.response.body" and not message.get("more_body", False)
            await send(message)

        for key in opening:
            self._opening[key] = self._opening.get(key, 0) + 1
        stream = request.method == "GET"  # a stream is not a request: it does not keep the session from idling
        with anyio.CancelScope() as serving:
            if session is not None:
                session.in_flight.add(serving)
                if not stream:
                    session.begin()
            try:
                await self.manager.handle_request(scope, receive, send_and_register)
            finally:
                for key in opening:
                    self._opening[key] -= 1
                    if not self._opening[key]:
                        del self._opening[key]
                if session is not None:
                    session.in_flight.discard(serving)
                    if not stream:
                        session.end()
        if serving.cancelled_caught and response["started"] and not response["ended"]:
            with contextlib.suppress(Exception):  # end the stream we cut short, rather than drop the connection
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        if session is not None and request.method == "DELETE":
            await self._end(session.id, forget=False)  # the SDK has ended it

    # places and their peers ----------------------------------------------------------------

    def _places(self) -> Iterator[Occupant]:
        """Every place held: sessions and 2026-07-28 handles (they count against the same bounds)."""
        yield from self.sessions.values()
        yield from self.handles

    async def _peer(self, place: Occupant, client: types.Implementation | None) -> McpPeer:
        """The place's peer, joining the room on first use (a failed join is tried again next time)."""
        task = place.peer
        if task is None or (task.done() and (task.cancelled() or task.exception() is not None)):
            name = clean_name(client.name if client else None) or "mcp-client"
            peers = self._host.peers  # the server vouches for the place's peer as an MCP client's
            credential = peers.vouch(place.room, "mcp", name)
            peer = McpPeer(self._ws_base, place.room, token=place.token, name=name, grant=place.grant,
                           runs=self.keeper.runs, code_mode=self.code_mode, credential=credential,
                           release=lambda: peers.withdraw(credential), shared=self.shared,
                           whose=functools.partial(self._host.presence_of, place.room))
            task = place.peer = asyncio.create_task(peer.start())  # bounded: connect gives up after its timeout
        try:
            return await asyncio.shield(task)
        except Exception as e:
            raise ToolError(f"could not join room {place.room!r}: {type(e).__name__}: {e}. Try again shortly.") from None

    def _opened(self, session: Session) -> None:
        """A new session: kept, and ended as soon as its link is revoked or expires."""
        self.sessions[session.id] = session
        self._watch(session)

    def _watch(self, place: Occupant) -> None:
        """End `place` as soon as its link is revoked or expires."""
        if self._lapses is not None:
            place.unwatch = self._lapses.watch_token(place.who, lambda why: self._lapsed(place, why))

    def _lapsed(self, place: Occupant, why: str) -> None:
        """The place's link was revoked or expired (called by the watcher, on the loop)."""
        log.info("MCP %s ends: %s", place.label, why)
        task = asyncio.get_running_loop().create_task(self._end_place(place))
        self._ending.add(task)
        task.add_done_callback(self._ending.discard)

    async def _end_place(self, place: Occupant) -> None:
        if isinstance(place, Session):
            await self._end(place.id)
        elif isinstance(place, Handle):
            await self._end_handle(place)

    async def _end(self, sid: str, *, forget: bool = True) -> None:
        """The session is over: its peer leaves the room, and (`forget`) the SDK ends it too."""
        session = self.sessions.pop(sid, None)
        if session is None:
            return
        for serving in session.in_flight:  # an open stream ends with the session
            serving.cancel()
        if session.ping is not None:
            session.ping.cancel()
        if forget:
            await self._forget(session)
        await self._leave(session)

    async def _end_handle(self, handle: Handle) -> None:
        """A 2026-07-28 link's place is over (idle, or its link lapsed): its peer leaves the room."""
        if self.handles.held.get(handle.key) is handle:
            self.handles.pop(handle.key)
            await self._leave(handle)

    async def _leave(self, place: Occupant) -> None:
        """An ended place's peer leaves its room (and the room's records may leave memory)."""
        if place.unwatch is not None:
            place.unwatch()
        task = place.peer
        if task is not None and task.done():
            if not task.cancelled() and task.exception() is None:
                await task.result().close()
        elif task is not None:  # a join under way is let finish (a cancelled connect could leave its socket behind)
            task.add_done_callback(_leave)
        if not any(p.room == place.room for p in self._places()):
            self.keeper.release(place.room)

    async def _forget(self, session: Session) -> None:
        """End the session in the SDK as its client would, by a DELETE (the manager has no other
        public way): it leaves the SDK's table at once, rather than `idle_s` after its streams end."""
        scope: Scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "DELETE", "scheme": "http",
            "path": f"/rooms/{session.room}/mcp", "raw_path": f"/rooms/{session.room}/mcp".encode(), "query_string": b"",
            "root_path": "", "client": None, "server": None, "user": principal(session.room, session.who),
            "headers": [(b"host", self._internal_host.encode()), (MCP_SESSION_ID_HEADER.lower().encode(), session.id.encode())],
        }

        async def receive() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def discard(message: Message) -> None:
            pass

        try:
            with anyio.fail_after(10):
                await self.manager.handle_request(scope, receive, discard)
        except Exception:
            log.exception("ending MCP session %s in the SDK", session.id[:8])

    async def _reap(self) -> None:
        """End places idle for `idle_s` (no request, whatever streams are open), and those whose
        token was revoked or expired since; ping through the open stream of a session half-way idle."""
        while True:
            await asyncio.sleep(min(5.0, self.limits.idle_s / 4))
            now = time.monotonic()
            for place in list(self._places()):
                try:
                    idle = place.idle_for(now)
                    if idle > self.limits.idle_s or not self._still_valid(place):
                        await self._end_place(place)
                    elif (isinstance(place, Session) and idle > self.limits.idle_s / 2 and place.in_flight and place.link is not None
                          and place.ping is None):
                        place.ping = asyncio.create_task(self._ping(place))
                except Exception:
                    log.exception("ending MCP %s", place.label)

    async def _ping(self, session: Session) -> None:
        """Ping through the session's stream; the client's answer is a request (it refreshes
        `idle_since`). Unanswered (an unread stream), the session idles out."""
        started = time.monotonic()
        try:
            await session.link.send_request(types.PingRequest(), types.EmptyResult, request_read_timeout_seconds=self.limits.idle_s)
        except Exception as e:
            log.debug("MCP session %s did not answer a ping: %r", session.id[:8], e)
        finally:
            if session.idle_since < started:  # unanswered: no new ping before it idles out
                await asyncio.sleep(max(0.0, self.limits.idle_s - (time.monotonic() - started)))
            session.ping = None

    def _still_valid(self, place: Occupant) -> bool:
        if self._access is None:  # auth is off
            return True
        try:
            self._access.verify(place.token, place.room)
        except TokenError:
            return False
        return True

    def _share(self, caller: Caller) -> Share:
        """Whose turn a call takes: its link (token id, so a '*' link is one link in every room);
        with auth off everyone is the same "open" token, so there each room's callers are one link."""
        link = caller.who.id if self._access is not None else f"{caller.who.id}@{caller.room}"
        return Share(caller.room, link)

    # the handshake era's notification ------------------------------------------------------------

    async def _on_initialized(self, ctx: Any, params: types.NotificationParams) -> None:
        """Join the room as soon as the client is ready, so people see it before its first call."""
        session = caller_of(ctx).place
        if isinstance(session, Session):
            session.link = ctx.session
            with contextlib.suppress(ToolError):
                await self._peer(session, client_info(ctx))


def _leave(task: asyncio.Task[McpPeer]) -> None:
    """A join finished after its session had ended: the peer leaves at once."""
    if not task.cancelled() and task.exception() is None:
        peer = task.result()
        _closing.add(closing := asyncio.get_running_loop().create_task(peer.close()))
        closing.add_done_callback(_closing.discard)


_closing: set[asyncio.Task[None]] = set()
"""Peers on their way out (held so their tasks are not collected mid-close)."""
