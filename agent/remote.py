"""Run one JavaScript file against a LIVE room (`inhabit exec FILE.js --room URL`).

Why: the same capabilities, session and one-transaction commit the agent uses, driven by a
person instead of a model — the quickest way to try a program against a real canvas, and a
check that the API is usable by hand. The room URL is the websocket URL a browser would use:
`ws://host:port/rooms/NAME?token=...`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from agent.canvas_api import CanvasSession, Grant, Quotas
from agent.sandbox import Limits, Sandbox
from canvas import new_id
from wire.client import CanvasClient


def parse_room_url(url: str) -> tuple[str, str, str | None]:
    """`ws://h:p/rooms/NAME?token=T` -> (`ws://h:p/rooms`, NAME, T). http(s) is accepted too."""
    parts = urlsplit(url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    if scheme not in ("ws", "wss") or "/" not in parts.path.strip("/"):
        raise ValueError(f"room URL must look like ws://host:port/rooms/NAME?token=..., not {url!r}")
    base, _, name = parts.path.rstrip("/").rpartition("/")
    token = (parse_qs(parts.query).get("token") or [None])[0]
    return f"{scheme}://{parts.netloc}{base}", name, token


async def exec_in_room(code: str, room_url: str, *, grant: Grant = "read", name: str = "exec", limits: Limits | None = None, quotas: Quotas | None = None) -> dict[str, Any]:
    """Connect, run `code` on a snapshot, commit its writes in one transaction if it succeeded."""
    ws_base, room, token = parse_room_url(room_url)
    client = await CanvasClient.connect(ws_base, room, token=token, name=name, kind="agent")
    try:
        session = CanvasSession.of(client.doc, author=name, run_id=new_id("exec-"), grant=grant, quotas=quotas)
        sandbox = Sandbox(workers=1)
        try:
            record = await sandbox.run(code, bindings=session.bindings(), limits=limits)
        finally:
            sandbox.close()
        out = record.model_dump()
        if record.ok and session.dirty:
            if client.read_only:
                raise PermissionError(f"the server made this connection read-only: {client.read_only}")
            session.commit(client.doc)
            out["written"] = {"run": session.run_id, "drawn": [s.id for s in session.added], "erased": session.erased, "said": len(session.said)}
            await client.flush()
        return out
    finally:
        await client.close()
