"""Tokens and room names as an attacker holding one link would try them, against a real server:
near-miss room names, junk in a token, expired and revoked tokens, tokens in the logs, and the
links minted before token v2."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
import subprocess
import sys
import time
from datetime import timedelta
from urllib.parse import quote

import httpx
import pytest
import websockets

from common.access import Access
from wire.client import CanvasClient

from support import ROOT
from support.live_server import LiveServer

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def server(shared_server: LiveServer) -> LiveServer:
    """These tests only need rooms or tokens of their own: one server for the module."""
    return shared_server


async def refusal(url: str) -> tuple[int, str] | None:
    """The close code and reason if the server refuses this websocket; None if it admits it
    (an admitted peer's first frame is the server's sync step 1, not a close)."""
    async with websockets.connect(url, open_timeout=5) as ws:
        try:
            await asyncio.wait_for(ws.recv(), 5)
        except websockets.ConnectionClosed as exc:
            assert exc.rcvd is not None, "closed without a close frame"
            return exc.rcvd.code, exc.rcvd.reason
    return None


async def close_code(url: str) -> tuple[int, str]:
    refused = await refusal(url)
    assert refused is not None, f"admitted: {url}"
    return refused


async def admitted(server, room: str, token: str) -> bool:
    """True if a real client gets into the room and syncs with this token."""
    try:
        client = await CanvasClient.connect(server.ws, room, token, reconnect=False, timeout=5)
    except Exception:
        return False
    await client.close()
    return True


def status(server, path: str, token: str) -> int:
    return httpx.get(f"{server.http}{path}", params={"token": token}, timeout=5).status_code


def inhabit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "inhabit", *args], cwd=ROOT, capture_output=True, text=True, timeout=30)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint_v1(server, room: str, role: str, room_part: str | None = None) -> str:
    """A token exactly as `Access.mint` made them before v2 (links people already hold);
    `room_part` replaces the encoded room, keeping the genuine signature."""
    secret = (server.data_dir / "secret.key").read_text().strip().encode()
    mac = hmac.new(secret, f"v1\x00{room}\x00{role}".encode(), hashlib.sha256).digest()[:18]
    return f"v1.{room_part or b64(room.encode())}.{role}.{b64(mac)}"


async def test_trailing_newline_room_is_refused(server):
    for token in (server.token("*", "edit"), server.token("lobby", "edit")):
        code, reason = await close_code(f"{server.ws}/lobby%0A?token={quote(token)}")
        assert code == 4400 and "room name" in reason
        assert status(server, "/rooms/lobby%0A/strokes", token) == 400
        assert status(server, "/rooms/lobby%0A/runs", token) in (400, 401)  # the agent's routes too
    assert await admitted(server, "lobby", server.token("lobby", "edit"))  # the real name still works


async def test_junk_in_the_room_part_is_refused(server):
    genuine = mint_v1(server, "lobby", "edit")
    assert await admitted(server, "lobby", genuine)
    # base64 decoders skip junk; each of these used to decode to 'lobby' under a genuine MAC
    room_b64 = b64(b"lobby")
    for junk in (room_b64[:3] + "!" + room_b64[3:], room_b64 + "\n", room_b64 + "=", " " + room_b64):
        token = mint_v1(server, "lobby", "edit", room_part=junk)
        code, reason = await close_code(f"{server.ws}/lobby?token={quote(token)}")
        assert (code, reason) == (4401, "malformed token"), junk
        assert status(server, "/rooms/lobby/strokes", token) == 401
    v2 = server.token("lobby", "view")
    for token in (v2.replace("v2.lobby.", "v2.lobby%0A."), v2.replace("v2.lobby.", "v2.lobby\n."), v2 + "\n", v2 + ".x"):
        code, reason = await close_code(f"{server.ws}/lobby?token={quote(token)}")
        assert (code, reason) == (4401, "malformed token"), token
        assert status(server, "/rooms/lobby/whoami", token) == 401


async def test_expired_token_is_refused(server):
    out = inhabit("token", "lobby", "--role", "edit", "--expires", "5s", "--data", str(server.data_dir))
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip()
    assert await admitted(server, "lobby", token) and status(server, "/rooms/lobby/strokes", token) == 200
    await asyncio.sleep(6)  # 5 s of life: a loaded machine may take seconds to run `inhabit token`
    code, reason = await close_code(f"{server.ws}/lobby?token={quote(token)}")
    assert code == 4401 and "expired" in reason
    assert status(server, "/rooms/lobby/strokes", token) == 401
    assert status(server, "/rooms/lobby/runs", token) == 401
    # a token minted already expired, with the server's own secret, is refused as well
    stale = Access.load(server.data_dir).mint("lobby", "view", expires=timedelta(days=-1))
    code, reason = await close_code(f"{server.ws}/lobby?token={quote(stale)}")
    assert code == 4401 and "expired" in reason


@pytest.mark.serial  # timing-sensitive: runs alone under xdist
async def test_revoked_token_is_refused_within_seconds(server_factory):
    server = server_factory()  # its own: what it revokes (a v1 link too) must stay valid for the other tests
    victim, bystander = server.token("lobby", "edit"), server.token("lobby", "view")
    legacy = mint_v1(server, "lobby", "view")
    assert await admitted(server, "lobby", victim)
    assert status(server, "/rooms/lobby/strokes", victim) == 200  # the server has read the (empty) list

    out = inhabit("revoke", victim, "--data", str(server.data_dir))
    assert out.returncode == 0, out.stderr
    revoked_at = time.monotonic()
    while (refused := await refusal(f"{server.ws}/lobby?token={quote(victim)}")) is None:
        assert time.monotonic() - revoked_at < 5, "revocation not seen within 5 s"
        await asyncio.sleep(0.2)
    code, reason = refused
    assert code == 4401 and "revoked" in reason
    assert status(server, "/rooms/lobby/strokes", victim) == 401
    assert status(server, "/rooms/lobby/runs", victim) == 401

    # other tokens are untouched; a v1 link is revoked by giving the token itself
    assert await admitted(server, "lobby", bystander) and status(server, "/rooms/lobby/strokes", bystander) == 200
    assert inhabit("revoke", legacy, "--data", str(server.data_dir)).returncode == 0
    await asyncio.sleep(1.5)
    assert status(server, "/rooms/lobby/strokes", legacy) == 401
    assert status(server, "/rooms/lobby/strokes", bystander) == 200


async def test_revoke_by_id_and_bad_input(server):
    out = inhabit("token", "lobby", "--role", "view", "--name", "Ann", "--data", str(server.data_dir))
    token = out.stdout.strip()
    token_id = re.search(r"token id ([A-Za-z0-9]{12})", out.stderr)[1]  # the id is told on stderr
    assert token_id in token
    assert inhabit("revoke", token_id, "--data", str(server.data_dir)).returncode == 0
    await asyncio.sleep(1.5)
    assert status(server, "/rooms/lobby/whoami", token) == 401
    assert inhabit("revoke", "not-an-id", "--data", str(server.data_dir)).returncode == 2
    forged = Access(b"another-secret-0123456789").mint("lobby", "edit")
    assert inhabit("revoke", forged, "--data", str(server.data_dir)).returncode == 2
    assert inhabit("token", "lobby\n", "--data", str(server.data_dir)).returncode == 2


async def test_tokens_never_reach_the_log(server_factory):
    server = server_factory(log_level="info")
    used = [server.token("lobby", "edit"), server.token("lobby", "view"), mint_v1(server, "lobby", "view")]
    assert await admitted(server, "lobby", used[0])  # websocket "[accepted]" line
    code, _ = await close_code(f"{server.ws}/other?token={quote(used[1])}")  # refused after accept
    assert code == 4403
    assert status(server, "/rooms/lobby/strokes", used[1]) == 200  # access log line
    assert status(server, "/rooms/lobby/whoami", used[2]) == 200
    # the parameter name percent-encoded: starlette still reads it as `token`
    assert httpx.get(f"{server.http}/rooms/lobby/strokes?%74oken={quote(used[0])}", timeout=5).status_code == 200
    await asyncio.sleep(0.5)  # let the server's stdout reach the file
    log = server.log_path.read_text(errors="replace")
    assert '"WebSocket /rooms/lobby?token=[redacted]" [accepted]' in log
    assert '"GET /rooms/lobby/strokes?token=[redacted] HTTP/1.1" 200' in log
    assert "%74oken=[redacted]" in log
    for token in used:
        for form in (token, quote(token), quote(token, safe="")):
            assert form not in log


async def test_v1_links_keep_working(server):
    view, edit = mint_v1(server, "lobby", "view"), mint_v1(server, "*", "edit")
    assert await admitted(server, "lobby", view) and await admitted(server, "anywhere", edit)
    r = httpx.get(f"{server.http}/rooms/lobby/whoami", params={"token": view}, timeout=5)
    assert r.status_code == 200 and r.json()["role"] == "view"
    code, reason = await close_code(f"{server.ws}/other?token={quote(view)}")
    assert code == 4403 and "another room" in reason
