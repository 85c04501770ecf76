"""`inhabit`: the command line (`serve`, `token`, `mcp`, `revoke`, `gc`, `exec`, `agent`). `serve`'s
flags are generated from the settings' parts (`inhabit/settings.py`), so a setting is declared
once and is a flag, an `INHABIT_` environment variable and a default at the same time."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import json
import logging
import re
import shlex
import socket
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

from pydantic import ValidationError

from common.access import ROOM_RULE, Access, TokenError, valid_room
from server.store import DataFolderError

from . import __version__
from .settings import Settings, flag_of, knobs


def add_settings_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per setting, grouped by the part that owns it; unset flags stay out, so env
    and defaults apply."""
    groups: dict[tuple[str, ...], Any] = {}
    for knob in knobs():
        part = knob.path[:-1]
        if part not in groups:
            groups[part] = parser.add_argument_group(".".join(part), (knob.part.__doc__ or "").split("\n\n")[0])
        group, field = groups[part], knob.field
        if field.annotation is bool:
            group.add_argument(*knob.flags, dest=knob.name, action="store_true", default=argparse.SUPPRESS, help=field.description)
        else:
            group.add_argument(*knob.flags, dest=knob.name, default=argparse.SUPPRESS, metavar=knob.name.upper(),
                               help=f"{field.description} (default {field.default})")


def settings_from(args: argparse.Namespace) -> Settings:
    """The settings from the flags given, over the environment and the defaults."""
    return Settings.from_flat(vars(args))


def explain(exc: ValidationError) -> str:
    """One line per problem, naming the flag (and variable) rather than pydantic's location."""
    lines = []
    for error in exc.errors():
        where = flag_of(error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        lines.append(f"  {where}: {message} (given {error['input']!r})" if where else f"  {message}")
    return "\n".join(lines)


_QUERY_PARAM = re.compile(r'([?&])([^=&\s"]+)=([^&\s"]*)')


def redact(text: str) -> str:
    """`text` with the value of every `token=` query parameter (however its name is
    percent-encoded) replaced, so a log line never hands out a working link."""
    def hide(m: re.Match[str]) -> str:
        return f"{m[1]}{m[2]}=[redacted]" if unquote_plus(m[2]).lower() == "token" else m[0]
    return _QUERY_PARAM.sub(hide, text)


class RedactTokens(logging.Filter):
    """Redacts tokens from a record's message and arguments. It edits the arguments in place
    rather than pre-formatting the message because uvicorn's access formatter reads them."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()}
        return True


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's own logging set-up plus `RedactTokens` on its handlers: uvicorn logs every
    request path with its query string (access lines, websocket "[accepted]" lines) at info."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"redact_tokens": {"()": RedactTokens}}
    for handler in config["handlers"].values():
        handler["filters"] = ["redact_tokens"]
    return config


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from .app import build_app  # here, not at the top: commands that do not serve (token, mcp, ...) stay quick

    try:
        settings = settings_from(args)
    except ValidationError as exc:
        print(f"inhabit serve: bad settings:\n{explain(exc)}", file=sys.stderr)
        return 2
    try:
        listener = listen(settings.server.host, settings.server.port)
    except OSError as exc:
        print(f"inhabit serve: cannot listen on {settings.server.host}:{settings.server.port}: {exc}", file=sys.stderr)
        return 1
    # --port 0: the port the OS picked, in the settings (the hosted agent's loopback URL, the printed links)
    settings = settings.model_copy(update={"server": settings.server.model_copy(update={"port": listener.getsockname()[1]})})
    try:
        app = build_app(settings)
    except DataFolderError as exc:  # one clear line, not a traceback
        listener.close()
        print(f"inhabit serve: {exc}", file=sys.stderr)
        return 2
    server = settings.server
    base = server.public_base
    print(f"inhabit serving on {base}  (data: {server.data})", flush=True)
    print(start_link(server, app.state.access), flush=True)
    connections = server.connections
    uvicorn_server = uvicorn.Server(uvicorn.Config(
        app, host=server.host, port=server.port, log_level=server.log_level, lifespan="on",
        log_config=uvicorn_log_config(),
        loop="auto",  # uvloop when importable (less CPU per frame), else the stdlib asyncio loop
        ws="websockets-sansio", ws_max_size=connections.max_message + 1024,
        ws_ping_interval=connections.ping_interval, ws_ping_timeout=connections.ping_interval,
        ws_per_message_deflate=False,  # like Node ws: compression costs more CPU than it saves here
        timeout_graceful_shutdown=5,
    ))
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn_server.run(sockets=[listener])
    return 0 if uvicorn_server.started else 3  # uvicorn's exit status for a failed start-up


def collect(args: argparse.Namespace) -> int:
    """`inhabit gc`: trim history now, with `serve`'s settings (`inhabit.gc`)."""
    from . import gc  # here: opening the stores imports what `token` and `mcp` do not need

    try:
        settings = settings_from(args)
    except ValidationError as exc:
        print(f"inhabit gc: bad settings:\n{explain(exc)}", file=sys.stderr)
        return 2
    return gc.main(args, settings.server)


START_ROOM = "lobby"
START_LINK_LIFE = timedelta(hours=24)


def start_link(server: Any, access: Access) -> str:
    """What `serve` prints to open the page: an edit link to one room that expires in a day (never
    a permanent link to every room: start-up output ends up in terminals, logs and screenshots),
    and how to mint the links to hand out."""
    where = "" if server.clustered else f" --data {shlex.quote(str(server.data))}"  # cluster: INHABIT_DATABASE_URL names it
    mint = f"inhabit token ROOM --role view|edit [--expires 7d]{where}"
    if server.open:
        return ("WARNING: --open: authentication is OFF, anyone who can reach this port can edit "
                f"(pages of other origins cannot: see --allowed-origins).\nopen in a browser: {server.public_base}/?room={START_ROOM}")
    token = access.mint(START_ROOM, "edit", expires=START_LINK_LIFE)
    return (f"open in a browser: {server.public_base}/?room={START_ROOM}&token={token}\n"
            f"  (an edit link to room {START_ROOM!r} only, for {START_LINK_LIFE.total_seconds() / 3600:g} h; "
            f"links to share, or for other rooms: {mint})")


def listen(host: str, port: int) -> socket.socket:
    """The socket `serve` hands uvicorn, bound before the app is built so that with `--port 0`
    the settings (and the hosted agent's loopback URL) name the port the OS picked."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, backlog=2048)


_DURATION = re.compile(r"([0-9]{1,6})([smhd])")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def expiry(text: str) -> datetime:
    """`--expires`: a time from now (`90s`, `30m`, `12h`, `7d`) or an ISO date or time (local
    time unless it names a zone)."""
    try:
        if m := _DURATION.fullmatch(text.strip()):
            return datetime.now(UTC) + timedelta(seconds=int(m[1]) * _SECONDS[m[2]])
        at = datetime.fromisoformat(text.strip()).astimezone()
    except (ValueError, OverflowError) as exc:
        raise argparse.ArgumentTypeError(f"expected 30m, 12h, 7d or an ISO date, not {text!r}") from exc
    if at <= datetime.now(UTC):
        raise argparse.ArgumentTypeError(f"{at.isoformat()} is already past")
    return at


class AccessUnavailable(Exception):
    """The token authority cannot be opened (bad settings, PostgreSQL unreachable): one line to print."""


@contextlib.contextmanager
def access_of(args: argparse.Namespace) -> Iterator[tuple[Access, str]]:
    """The token authority `inhabit serve` uses with the same settings, and the flags naming it:
    PostgreSQL's with `--database` (or INHABIT_DATABASE_URL: cluster mode), else the data
    folder's; INHABIT_SECRET, when set, is the secret either way."""
    from common.postgres import DatabaseError, open_pool, redact_url
    from common.shared_access import shared_access

    try:
        env = Settings().server
    except ValidationError as exc:
        raise AccessUnavailable(f"bad settings in the environment:\n{explain(exc)}") from exc
    secret = env.secret.get_secret_value() if env.secret else None
    url = args.database or env.cluster.database_url
    if not url:
        yield Access.load(args.data, secret), f"--data {args.data}"
        return
    try:
        pool = open_pool(url, 2)
    except DatabaseError as exc:
        raise AccessUnavailable(str(exc)) from exc
    try:
        yield shared_access(pool, secret, watch=False), f"--database {shlex.quote(redact_url(url))}"
    finally:
        pool.close()


def token(args: argparse.Namespace) -> int:
    """Print a new token on stdout (alone, for `$(inhabit token ...)`); its id on stderr."""
    try:
        with access_of(args) as (access, where):
            minted = access.mint(args.room, args.role, name=args.name, expires=args.expires)
    except (ValueError, AccessUnavailable) as exc:
        print(f"inhabit token: {exc}", file=sys.stderr)
        return 2
    info = access.parse(minted)
    until = f", expires {info.expires.isoformat()}" if info.expires else ""
    print(minted)
    print(f"token id {info.id}{until}; to revoke it: inhabit revoke {info.id} {where}", file=sys.stderr)
    return 0


def mcp_config(args: argparse.Namespace) -> int:
    """Print what a person pastes into their MCP client to bring it into ROOM: the endpoint, a
    freshly minted token, the `claude mcp add` line and the JSON for clients set up by file."""
    try:
        with access_of(args) as (access, where):
            return _mcp_config(args, access, where)
    except AccessUnavailable as exc:
        print(f"inhabit mcp: {exc}", file=sys.stderr)
        return 2


def _mcp_config(args: argparse.Namespace, access: Access, where: str) -> int:
    try:
        if not valid_room(args.room):
            raise ValueError(ROOM_RULE)
        minted = access.mint(args.room, args.role, name=args.name, expires=args.expires)
        base = (args.url or Settings().server.public_base).rstrip("/")
    except (ValueError, ValidationError) as exc:
        print(f"inhabit mcp: {exc}", file=sys.stderr)
        return 2
    info = access.parse(minted)
    url, name, header = f"{base}/rooms/{args.room}/mcp", f"inhabit-{args.room}", f"Authorization: Bearer {minted}"
    config = {"mcpServers": {name: {"type": "http", "url": url, "headers": {"Authorization": f"Bearer {minted}"}}}}
    until = f", expires {info.expires.isoformat()}" if info.expires else ""
    print(f"MCP endpoint for room {args.room!r}: {'a read-only' if args.role == 'view' else 'an'} agent peer "
          f"(token id {info.id}{until}; revoke: inhabit revoke {info.id} {where})\n")
    print(f"URL:     {url}\nHeader:  {header}\n")
    print("Claude Code:")
    print(f"  claude mcp add --transport http {name} {url} --header {shlex.quote(header)}\n")
    print("Clients configured by file (.mcp.json, Cursor's mcp.json, ...):")
    print(json.dumps(config, indent=2) + "\n")
    print(f"Clients that take only a URL:\n  {url}?token={minted}")
    return 0


def revoke(args: argparse.Namespace) -> int:
    """Add a token (or token id) to the revocation list (the data dir's, or the cluster's in
    PostgreSQL); running servers see it within a second or two."""
    try:
        with access_of(args) as (access, _):
            token_id = access.revoke(args.token)
    except (TokenError, ValueError, AccessUnavailable) as exc:
        print(f"inhabit revoke: {exc}", file=sys.stderr)
        return 2
    print(f"revoked token id {token_id}")
    return 0


def read_code(path: str) -> str:
    return sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")


def run_exec(args: argparse.Namespace) -> int:
    """Run a file in a fresh sandbox (no grants), or against a live room's canvas API."""
    from agent.remote import exec_in_room
    from agent.sandbox import Limits, Sandbox

    code = read_code(args.file)
    limits = Limits(timeout_s=args.timeout, memory_bytes=int(args.memory * (1 << 20)))
    if not args.room:
        record = Sandbox(limits=limits).run_sync(code)
        print(record.model_dump_json(indent=2))
        return 0 if record.ok else 1
    try:
        out: dict[str, Any] = asyncio.run(exec_in_room(code, args.room, grant=args.grant, limits=limits))
    except Exception as e:
        print(f"inhabit exec: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    print(json.dumps(out, indent=2, default=str))
    return 0 if out.get("ok") else 1


def run_agent(args: argparse.Namespace) -> int:
    from agent.hosting.peer import run_forever
    from agent.runs.loop import NO_KEY, has_credentials

    base = args.server.rstrip("/")
    if base.startswith("http"):
        base = "ws" + base[4:]
    ws_base = base if base.endswith("/rooms") else base + "/rooms"
    if not has_credentials():
        print(f"warning: {NO_KEY}", file=sys.stderr)
    try:
        asyncio.run(run_forever(ws_base, args.room, token=args.token, name=args.name, settings=Settings().agent))
    except KeyboardInterrupt:
        return 0
    except Exception as e:
        print(f"inhabit agent: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="inhabit", description="A shared canvas for people and agents.")
    parser.add_argument("--version", action="version", version=f"inhabit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="run the server (flags may also be set as INHABIT_<NAME> variables)")
    add_settings_flags(s)
    s.set_defaults(func=serve)

    t = sub.add_parser("token", help="print an access token")
    t.add_argument("room", help="room name, or '*' for every room")
    t.add_argument("--role", choices=("view", "edit"), default="edit")
    t.add_argument("--name", default=None, help="display name shown to others in the room")
    t.add_argument("--expires", type=expiry, default=None, metavar="WHEN", help="30m, 12h, 7d or an ISO date (default: never)")
    t.add_argument("--data", default="./data")
    t.add_argument("--database", default=None, metavar="URL", help="cluster mode: the PostgreSQL the servers use (default: INHABIT_DATABASE_URL)")
    t.set_defaults(func=token)

    m = sub.add_parser("mcp", help="print how to bring an MCP client (Claude Code, Cursor, ...) into a room, with a new token")
    m.add_argument("room", help="room name")
    m.add_argument("--role", choices=("view", "edit"), default="edit", help="edit: the client draws; view: it only reads")
    m.add_argument("--name", default=None, help="name stored in the token (shown in logs and revocation)")
    m.add_argument("--expires", type=expiry, default=None, metavar="WHEN", help="30m, 12h, 7d or an ISO date (default: never)")
    m.add_argument("--url", default=None, help="the server's base URL as clients reach it (default: from INHABIT_PUBLIC_URL/HOST/PORT)")
    m.add_argument("--data", default="./data")
    m.add_argument("--database", default=None, metavar="URL", help="cluster mode: the PostgreSQL the servers use (default: INHABIT_DATABASE_URL)")
    m.set_defaults(func=mcp_config)

    r = sub.add_parser("revoke", help="refuse a token from now on (running servers too)")
    r.add_argument("token", metavar="TOKEN_OR_ID", help="the token, or the id `inhabit token` printed")
    r.add_argument("--data", default="./data")
    r.add_argument("--database", default=None, metavar="URL", help="cluster mode: the PostgreSQL the servers use (default: INHABIT_DATABASE_URL)")
    r.set_defaults(func=revoke)

    g = sub.add_parser("gc", help="trim old versions and records now (to the bounds, budget and --room-ttl serve uses) and print what was freed")
    add_settings_flags(g)
    g.add_argument("--vacuum", action="store_true", help="also rewrite the SQLite files without their free pages (only while the server is stopped)")
    g.set_defaults(func=collect)

    e = sub.add_parser("exec", help="run a JavaScript file in the sandbox, print the RunRecord")
    e.add_argument("file", help="JavaScript file ('-' for stdin)")
    e.add_argument("--timeout", type=float, default=2.0, metavar="S", help="wall-time limit (seconds)")
    e.add_argument("--memory", type=float, default=64, metavar="MB", help="memory limit (MiB)")
    e.add_argument("--room", default=None, metavar="URL", help="run against a live room: ws://host:port/rooms/NAME?token=...")
    e.add_argument("--grant", choices=("read", "write"), default="read", help="canvas access for --room (default read)")
    e.set_defaults(func=run_exec)

    a = sub.add_parser("agent", help="run a Code Mode agent peer in a room (answers @agent prompts in chat)")
    a.add_argument("--server", required=True, metavar="URL", help="server base URL, e.g. http://127.0.0.1:8000")
    a.add_argument("--room", required=True, metavar="NAME")
    a.add_argument("--token", default=None, help="edit token for the room (not needed with --open servers)")
    a.add_argument("--name", default="agent", help="display name; prompts may address it as @NAME")
    a.set_defaults(func=run_agent)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactTokens())
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
