"""Run one JavaScript file against a LIVE room (`inhabit exec FILE.js --room URL`).

Why: the same capabilities, session and one-transaction commit the agent uses, driven by a
person instead of a model — the quickest way to try a program against a real canvas, and a
check that the API is usable by hand. The room URL is the websocket URL a browser would use:
`ws://host:port/rooms/NAME?token=...`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from agent.contract.canvas import CanvasSession, Grant, Quotas
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
    tokens = parse_qs(parts.query).get("token")
    token = tokens[0] if tokens else None
    return f"{scheme}://{parts.netloc}{base}", name, token


async def check_role(ws_base: str, room: str, token: str | None, grant: Grant) -> None:
    """Fail up front, before running anything, when the token cannot do what `grant` asks:
    the server's `GET /rooms/NAME/whoami` says which role the token has in the room."""
    http_base = ws_base.replace("ws", "http", 1)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(timeout=10) as http:
        r = await http.get(f"{http_base}/{room}/whoami", headers=headers)
    if r.status_code in (401, 403):
        raise PermissionError(f"the server refused this token for room {room!r} (HTTP {r.status_code}): {r.text.strip()[:200]}")
    r.raise_for_status()
    role = r.json().get("role")
    if grant == "write" and role != "edit":
        raise PermissionError(f"this token is view-only in room {room!r}: --grant write needs an edit token")


async def exec_in_room(code: str, room_url: str, *, grant: Grant = "read", name: str = "exec", limits: Limits | None = None, quotas: Quotas | None = None) -> dict[str, Any]:
    """Connect, run `code` on a snapshot, commit its writes in one transaction if it succeeded."""
    ws_base, room, token = parse_room_url(room_url)
    await check_role(ws_base, room, token, grant)
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
