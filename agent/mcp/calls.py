"""The MCP handlers: `tools/list` and `tools/call`, for a caller the endpoint has checked.

Why apart from the endpoint: what a tool does is the same whatever the protocol era and however
the caller holds its place in the room (`agent.mcp.occupants`: a handshake session or a
2026-07-28 link handle); the endpoint only decides who the caller is and hands it over in the
request's scope (`CALLER`). Here: the calls-per-minute bound per link and room, one execute at a
time per place, fair shares of the sandbox and the renderer (`agent.sandbox.fair`), and an edit
link's `execute` with `on` installing a behaviour with that link as its installer.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any

import mcp_types as types
from starlette.requests import Request

from agent.contract.codemode import CodeMode
from agent.contract.render import check_box
from agent.limits.admission import RateLimiter
from agent.mcp.occupants import Caller, Occupant
from agent.mcp.peer import Installing, McpPeer
from agent.mcp.settings import McpLimits
from agent.mcp.tools import ToolError, code_arg, image_result, install_args, query_arg, text_result, tool_list, view_args
from agent.runs.routes import installer_of
from agent.sandbox import FairPool, OverBudget, Share
from canvas import BBox

CALLER = "inhabit.mcp.caller"
"""The scope key under which the endpoint hands a request's `Caller` to the tool handlers."""

Join = Callable[[Occupant, types.Implementation | None], Awaitable[McpPeer]]
"""The place's peer in its room, joining on first use (`ToolError` if it cannot)."""


class ToolCalls:
    """The lowlevel server's `on_list_tools` and `on_call_tool`."""

    def __init__(self, limits: McpLimits, code_mode: CodeMode, renderer: FairPool, installing: Installing, join: Join,
                 share: Callable[[Caller], Share]) -> None:
        self.limits, self.code_mode, self.renderer, self.installing = limits, code_mode, renderer, installing
        self.join, self.share = join, share
        self.rate = RateLimiter(limits.calls_per_minute)
        """Tool calls per (link, room) per minute."""

    async def list_tools(self, ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        caller = caller_of(ctx)
        if caller.place is not None and caller.place.peer is None:  # a 2026-07-28 client's first word: it shows in the room
            try:
                await self.join(caller.place, client_info(ctx))
            except ToolError:
                pass  # tried again at its first call, which says why
        return types.ListToolsResult(tools=tool_list("write" if caller.who.role == "edit" else "read"))

    async def call_tool(self, ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        caller = caller_of(ctx)
        place = caller.place
        args = params.arguments or {}
        try:
            if place is None:
                raise ToolError("tools are called within a session: initialize first")
            key = (caller.who.id, caller.room)
            wait = self.rate.wait(key)
            if wait:
                raise ToolError(f"too many calls from this token: at most {self.limits.calls_per_minute} a minute in this room; "
                                f"try again in {math.ceil(wait)} s")
            self.rate.take(key)
            if params.name == "search":
                return text_result(self.code_mode.reference(place.grant, behaviours=place.grant == "write").search(query_arg(args), seen=place.seen))
            if params.name == "execute":
                return await self._execute(caller, place, args, client_info(ctx))
            if params.name == "view":
                return await self._view(caller, place, args, client_info(ctx))
            raise ToolError(f"unknown tool {params.name!r}; the tools are search, execute and view")
        except ToolError as e:
            return text_result(str(e), error=True)

    async def _execute(self, caller: Caller, place: Occupant, args: dict[str, Any], client: types.Implementation | None) -> types.CallToolResult:
        code = code_arg(args)
        plan = install_args(args)
        installer = installer_of(caller.who) if plan is not None else None
        if plan is not None and installer is None:
            raise ToolError("this token may only view the room, so it cannot install behaviours (on, name and rehearse need an "
                            "edit token): execute without them to read the room")
        peer = await self.join(place, client)
        async with place.busy:  # one program at a time per place
            if plan is not None and installer is not None:
                out = await peer.install(code, plan, installer, self.installing)
            else:
                try:
                    out = await peer.execute(code, self.share(caller))
                except OverBudget as e:
                    raise ToolError(f"not run: {e}") from None
        return text_result(out, error=not out["ok"])

    async def _view(self, caller: Caller, place: Occupant, args: dict[str, Any], client: types.Implementation | None) -> types.CallToolResult:
        view = view_args(args)
        box = BBox(view.box.x0, view.box.y0, view.box.x1, view.box.y1) if view.box else None
        if box is not None and (problem := check_box(box)):
            raise ToolError(problem)
        peer = await self.join(place, client)
        try:
            return image_result(await peer.view(box, view.size, self.renderer, self.share(caller), self.limits.render_s))
        except OverBudget as e:
            raise ToolError(f"not drawn: {e}") from None
        except TimeoutError:
            raise ToolError(f"not drawn: the view took longer than {self.limits.render_s:g} s; ask for a smaller box "
                            "or size, or try again shortly") from None


def caller_of(ctx: Any) -> Caller:
    request = getattr(ctx, "request", None)
    caller = request.scope.get(CALLER) if isinstance(request, Request) else None
    if not isinstance(caller, Caller):  # only our endpoint reaches the handlers; say so if that ever changes
        raise RuntimeError("MCP request without a checked caller")
    return caller


def client_info(ctx: Any) -> types.Implementation | None:
    params = ctx.session.client_params
    return params.client_info if params is not None else None
