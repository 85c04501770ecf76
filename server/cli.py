"""`inhabit`: the command line, and the composition root (the only place agent meets server)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .access import Access
from .config import ServerConfig


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from .app import create_app

    config = ServerConfig(
        host=args.host, port=args.port, data=Path(args.data), open=args.open,
        max_message=args.max_message, unload_grace=args.unload_grace,
        compact_every=args.compact_every, public_url=args.public_url,
    )
    plugins = []
    try:
        from agent.plugin import AgentPlugin  # type: ignore[import-not-found]
    except ImportError:
        AgentPlugin = None  # noqa: N806
    if AgentPlugin is not None:
        plugins.append(AgentPlugin(config))
    app = create_app(config, plugins)
    if config.open:
        url = f"{config.base_url}/?room=lobby"
        print("WARNING: --open: authentication is OFF, anyone who can reach this port can edit.", flush=True)
    else:
        url = f"{config.base_url}/?room=lobby&token={app.state.access.mint('*', 'edit')}"
    print(f"inhabit serving on {config.base_url}  (data: {config.data})", flush=True)
    print(f"open in a browser: {url}", flush=True)
    uvicorn.run(
        app, host=config.host, port=config.port, log_level=args.log_level, lifespan="on",
        loop="auto",  # uvloop when importable (less CPU per frame), else the stdlib asyncio loop
        ws="websockets-sansio", ws_max_size=config.max_message + 1024,
        ws_ping_interval=config.ping_interval, ws_ping_timeout=config.ping_interval,
        ws_per_message_deflate=False,  # like Node ws: compression costs more CPU than it saves here
        timeout_graceful_shutdown=5,
    )
    return 0


def token(args: argparse.Namespace) -> int:
    access = Access.load(args.data)
    print(access.mint(args.room, args.role))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="inhabit", description="A shared canvas for people and agents.")
    sub = parser.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="run the server")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--data", default="./data", help="data directory (database, token secret)")
    s.add_argument("--open", action="store_true", help="disable authentication (trusted networks only)")
    s.add_argument("--max-message", type=int, default=8 * 1024 * 1024, metavar="BYTES")
    s.add_argument("--unload-grace", type=float, default=30.0, metavar="SECONDS")
    s.add_argument("--compact-every", type=int, default=500, metavar="UPDATES")
    s.add_argument("--public-url", default=None)
    s.add_argument("--log-level", default="warning")
    s.set_defaults(func=serve)

    t = sub.add_parser("token", help="print an access token")
    t.add_argument("room", help="room name, or '*' for every room")
    t.add_argument("--role", choices=("view", "edit"), default="edit")
    t.add_argument("--data", default="./data")
    t.set_defaults(func=token)

    try:
        import agent.cli  # type: ignore[import-not-found]

        agent.cli.register(sub)
    except (ImportError, AttributeError):
        pass
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
