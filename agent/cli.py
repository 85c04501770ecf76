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
    add_exec(subparsers)


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
