"""The browser-facing edge: which web pages may act here, and the headers that keep ours safe.

Why it exists: links carry their token in the URL and the server sets no cookies, so a foreign
page holds no ambient authority — except where there is no token to hold. With `--open`, any page
in the operator's browser could open a room's websocket (websockets have no same-origin policy),
read and draw, and POST a `text/plain` prompt (no CORS preflight) that runs on the operator's
model key; and a DNS-rebinding page (a foreign name resolving to 127.0.0.1) is "same origin"
with whatever it reaches. So, always (not only with `--open`):

- `Origin`: a websocket upgrade or a state-changing request (POST, PUT, PATCH, DELETE) that
  carries one must come from this server's own origin (the request's `Host`) or an origin in
  `--allowed-origins` / `--public-url`; others get 403 (a websocket: close 1008 with the reason).
  Requests without `Origin` are not from a page's script (browsers send it on every cross-origin
  request and every POST): they pass, and their token decides.
- `Host` (with `--open` only, where no token stands behind the check): must name this server
  (`ServerSettings.trusted_hosts`), else 421; `/healthz` stays answerable for load balancers.
  With tokens, a rebinding page has no token. `/rooms/NAME/mcp` checks `Host` always, through
  the MCP SDK's transport security (`agent.mcp.endpoint`).
- Every response carries a Content-Security-Policy (scripts and connections to this server only,
  no framing), `Referrer-Policy: no-referrer` (a page's URL is a token link) and
  `X-Frame-Options: DENY`.

`BrowserEdge` is the ASGI middleware for HTTP; `server.websocket` asks `refusal` at the upgrade.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common.http import error_response

from .metrics import Metrics
from .settings import ServerSettings, host_name

log = logging.getLogger("inhabit.edge")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
"""Methods that change nothing here: a cross-origin page may send them (it cannot read the answer)."""
_DEFAULT_PORT = {"http": ":80", "https": ":443"}
_PLAIN_HOST = re.compile(r"^[A-Za-z0-9.-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$")
"""A Host header fit to name in a header we send back (no spaces, quotes or `;`)."""


def _same_netloc(origin: str, host: str) -> bool:
    """Does `origin` (`scheme://host[:port]`) name the server the `Host` header names?"""
    parts = urlsplit(origin)
    default = _DEFAULT_PORT.get(parts.scheme, "")
    return bool(parts.netloc) and parts.netloc.removesuffix(default) == host.lower().removesuffix(default)


def host_trusted(host: str | None, settings: ServerSettings) -> bool:
    return bool(host) and host_name(host or "") in settings.trusted_hosts


def refusal(headers: Headers, settings: ServerSettings, *, acting: bool) -> tuple[int, str] | None:
    """Why a browser request (`acting`: it would change something, or is a websocket) is refused
    here — (HTTP status, reason) — or None."""
    host = headers.get("host")
    if settings.open and not host_trusted(host, settings):
        return 421, f"Host {(host or '')[:60]!r} is not a name of this server (with --open: see --public-url, --allowed-origins)"
    origin = headers.get("origin")
    if not acting or origin is None:
        return None
    origin = origin.strip().lower().rstrip("/")
    if origin in settings.origins or (host is not None and origin != "null" and _same_netloc(origin, host)
                                      and (not settings.open or host_trusted(host, settings))):
        return None
    return 403, f"cross-origin request refused: {origin[:60]} is not this server's origin (see --allowed-origins)"


def content_security_policy(host: str | None) -> str:
    """The page's CSP: its own scripts and styles (inline style attributes: the page sets colours
    that way), images also from data:/blob:, connections to this server only (its websockets
    named, for browsers whose 'self' does not cover ws:), never framed."""
    sockets = f" ws://{host} wss://{host}" if host and _PLAIN_HOST.match(host) else ""
    return ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
            f"connect-src 'self'{sockets}; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
            "frame-ancestors 'none'")


class BrowserEdge:
    """ASGI middleware: refuses what `refusal` refuses (an `ApiError` body) and adds the page headers."""

    def __init__(self, app: ASGIApp, settings: ServerSettings, metrics: Metrics) -> None:
        self.app = app
        self.settings = settings
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # websockets: `server.websocket` refuses with a close frame
            return await self.app(scope, receive, send)
        headers = Headers(scope=scope)
        if scope["path"] != "/healthz":
            refused = refusal(headers, self.settings, acting=scope["method"] not in SAFE_METHODS)
            if refused is not None:
                self.metrics.cross_origin_refused += 1
                log.warning("refused %s %s: %s", scope["method"], scope["path"], refused[1])
                return await error_response(*refused)(scope, receive, send)
        extra = [(b"content-security-policy", content_security_policy(headers.get("host")).encode()),
                 (b"referrer-policy", b"no-referrer"), (b"x-frame-options", b"DENY"), (b"x-content-type-options", b"nosniff")]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
