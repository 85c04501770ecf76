"""Agent commands for `inhabit` (server/cli.py calls `register(subparsers)`).

`inhabit exec FILE.js [--timeout S] [--memory MB]` runs a program in a fresh sandbox and
prints its RunRecord as JSON; exit status 0 if ok, else 1. Extend via `exec_grants` below
(e.g. `--room/--grant`) rather than by changing the run path.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any, Callable

GrantsFactory = Callable[[argparse.Namespace], list[Any]]
exec_grants: list[GrantsFactory] = []  # each returns [(Capability, handler), ...] for a run


def register(subparsers: Any) -> None:
    exec_parser = add_exec(subparsers)
    add_exec_room(exec_parser)
    add_agent(subparsers)


def add_exec(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser("exec", help="run a JavaScript file in the sandbox, print the RunRecord")
    p.add_argument("file", help="JavaScript file ('-' for stdin)")
    p.add_argument("--timeout", type=float, default=2.0, metavar="S", help="wall-time limit (seconds)")
    p.add_argument("--memory", type=float, default=64, metavar="MB", help="memory limit (MiB)")
    p.set_defaults(func=run_exec)
    return p


def run_exec(args: argparse.Namespace) -> int:
    from agent.sandbox import Limits, Sandbox

    code = sys.stdin.read() if args.file == "-" else open(args.file, encoding="utf-8").read()
    limits = Limits(timeout_s=args.timeout, memory_bytes=int(args.memory * (1 << 20)))
    grants = [g for factory in exec_grants for g in factory(args)]
    record = Sandbox(limits=limits).run_sync(code, grants=grants)
    print(record.model_dump_json(indent=2))
    return 0 if record.ok else 1


# ---- `exec --room URL --grant read|write` and `agent` (the Code Mode agent) -------------


def add_exec_room(p: argparse.ArgumentParser) -> None:
    """`exec FILE.js --room ws://host:port/rooms/NAME?token=T`: run against a live room's canvas API."""
    p.add_argument("--room", default=None, metavar="URL", help="run against a live room: ws://host:port/rooms/NAME?token=...")
    p.add_argument("--grant", choices=("read", "write"), default="read", help="canvas access for --room (default read)")
    p.set_defaults(func=run_exec_dispatch)


def run_exec_dispatch(args: argparse.Namespace) -> int:
    if not getattr(args, "room", None):
        return run_exec(args)
    import asyncio
    import json

    from agent.remote import exec_in_room
    from agent.sandbox import Limits

    code = sys.stdin.read() if args.file == "-" else open(args.file, encoding="utf-8").read()
    limits = Limits(timeout_s=args.timeout, memory_bytes=int(args.memory * (1 << 20)))
    try:
        out = asyncio.run(exec_in_room(code, args.room, grant=args.grant, limits=limits))
    except Exception as e:  # noqa: BLE001 - a CLI prints the reason, not a traceback
        print(f"inhabit exec: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    print(json.dumps(out, indent=2, default=str))
    return 0 if out.get("ok") else 1


def add_agent(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser("agent", help="run a Code Mode agent peer in a room (answers @agent prompts in chat)")
    p.add_argument("--server", required=True, metavar="URL", help="server base URL, e.g. http://127.0.0.1:8000")
    p.add_argument("--room", required=True, metavar="NAME")
    p.add_argument("--token", default=None, help="edit token for the room (not needed with --open servers)")
    p.add_argument("--name", default="agent", help="display name; prompts may address it as @NAME")
    p.set_defaults(func=run_agent)
    return p


def run_agent(args: argparse.Namespace) -> int:
    import asyncio

    from agent.model import NO_KEY, has_credentials
    from agent.peer import run_forever

    base = args.server.rstrip("/")
    if base.startswith("http"):
        base = "ws" + base[4:]
    ws_base = base if base.endswith("/rooms") else base + "/rooms"
    if not has_credentials():
        print(f"warning: {NO_KEY}", file=sys.stderr)
    try:
        asyncio.run(run_forever(ws_base, args.room, token=args.token, name=args.name))
    except KeyboardInterrupt:
        return 0
    except Exception as e:  # noqa: BLE001
        print(f"inhabit agent: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    return 0
