"""Helpers for the MCP tests (test_mcp, test_web_mcp): the official SDK's own client over
streamable HTTP against a live server (tests/support/live_server.py's LiveServer), and a bare-HTTP
session for what a well-behaved client never does (no stream open, no goodbye)."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import httpx2
import mcp_types as types
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from PIL import Image

HANDSHAKE = "2025-11-25"


def mcp_url(server: Any, room: str) -> str:
    return f"{server.http}/rooms/{room}/mcp"


@asynccontextmanager
async def mcp_client(server: Any, room: str, *, role: str = "edit", name: str = "tester", token: str | None = None,
                     headers: dict[str, str] | None = None, mode: str = "legacy") -> AsyncIterator[Client]:
    """An SDK client in `room` (`headers` replace the Authorization header made from the token). `mode`: the
    SDK's connect mode: "legacy" (the initialize handshake, a session: what most tests pin), "auto" (probe the
    2026-07-28 revision, else the handshake), or "2026-07-28" (that revision only: no session)."""
    if headers is None:
        headers = {"Authorization": f"Bearer {token or server.token(room, role)}"}
    http = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=120))
    transport = streamable_http_client(mcp_url(server, room), http_client=http)
    async with http, Client(transport, client_info=types.Implementation(name=name, version="1.0"), mode=mode) as client:
        yield client


def payload(result: types.CallToolResult) -> Any:
    """The JSON a tool answered with (its last text block)."""
    text = [c for c in result.content if isinstance(c, types.TextContent)][-1].text
    try:
        return json.loads(text)
    except ValueError:
        return text


def picture(result: types.CallToolResult) -> Image.Image:
    image = next(c for c in result.content if isinstance(c, types.ImageContent))
    assert image.mime_type == "image/png"
    return Image.open(io.BytesIO(base64.b64decode(image.data))).convert("RGB")


def agents(client: Any) -> dict[str, dict[str, Any]]:
    """Agent peers in a headless client's view of the room's presence, by name: the hosted agent
    ("agent") and MCP sessions ("mcp"), the kinds the server vouches for."""
    return {s["user"]["name"]: s for s in client.awareness().values() if (s.get("user") or {}).get("kind") in ("agent", "mcp")}


class RawSession:
    """An MCP session spoken in bare HTTP (httpx): initialize, then single requests."""

    def __init__(self, server: Any, room: str, token: str, name: str = "raw") -> None:
        self.url, self.token, self.name = mcp_url(server, room), token, name
        self.id: str | None = None

    def headers(self, **extra: str) -> dict[str, str]:
        out = {"Authorization": f"Bearer {self.token}", "Accept": "application/json, text/event-stream",
               "Content-Type": "application/json", "MCP-Protocol-Version": HANDSHAKE}
        if self.id:
            out["Mcp-Session-Id"] = self.id
        return {**out, **extra}

    def initialize(self) -> httpx.Response:
        params = {"protocolVersion": HANDSHAKE, "capabilities": {}, "clientInfo": {"name": self.name, "version": "1"}}
        r = httpx.post(self.url, json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params},
                       headers=self.headers(), timeout=30)
        if r.status_code == 200:
            self.id = r.headers["mcp-session-id"]
            httpx.post(self.url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=self.headers(), timeout=30)
        return r

    def request(self, method: str, params: dict[str, Any] | None = None, **headers: str) -> httpx.Response:
        return httpx.post(self.url, json={"jsonrpc": "2.0", "id": 2, "method": method, "params": params or {}},
                          headers=self.headers(**headers), timeout=30)
