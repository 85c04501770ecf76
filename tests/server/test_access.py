"""Tokens: refused with clear close codes; a view token cannot write and is told so."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest
import websockets

from canvas import Stroke
from common.access import Access, TokenError, valid_room
from wire.client import CanvasClient, ClientError

from support.live_server import LiveServer

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def server(shared_server: LiveServer) -> LiveServer:
    """These tests only need rooms of their own: one server for the module."""
    return shared_server


async def close_code(url: str) -> tuple[int, str]:
    async with websockets.connect(url) as ws:
        with pytest.raises(websockets.ConnectionClosed) as info:
            while True:
                await asyncio.wait_for(ws.recv(), 5)
    return info.value.rcvd.code, info.value.rcvd.reason


def test_access_mint_and_check(tmp_path):
    acc = Access.load(tmp_path)
    assert (tmp_path / "secret.key").stat().st_mode & 0o077 == 0
    t = acc.mint("r", "view")
    assert acc.check(t, "r") == "view" and acc.check(t, "other") is None
    assert acc.check(acc.mint("*", "edit"), "anything") == "edit"
    assert acc.check(t[:-2] + "xx", "r") is None
    assert acc.check(Access(b"another-secret-0123456789").mint("r"), "r") is None
    assert Access.load(tmp_path).check(t, "r") == "view"  # same secret after reload
    with pytest.raises(ValueError):
        acc.mint("r", "admin")  # type: ignore[arg-type]


def test_room_names_match_whole_strings():
    assert valid_room("lobby") and valid_room("a" * 64) and valid_room("A-z_0")
    for bad in ("lobby\n", "\nlobby", "lobby ", "", "a" * 65, "lob.by", "lobby\x00", "ｌobby", "*"):
        assert not valid_room(bad), repr(bad)
    acc = Access(b"0123456789abcdef")
    with pytest.raises(ValueError):
        acc.mint("lobby\n", "view")
    with pytest.raises(TokenError) as info:
        acc.verify(acc.mint("*", "edit"), "lobby\n")
    assert info.value.code == 4400


def test_v2_carries_id_name_and_expiry(tmp_path):
    acc = Access.load(tmp_path)
    at = datetime.now(UTC) + timedelta(hours=1)
    info = acc.verify(acc.mint("r", "view", name="Zoë ✏️", expires=at), "r")
    assert (info.room, info.role, info.name, info.label) == ("r", "view", "Zoë ✏️", "Zoë ✏️")
    assert info.expires is not None and abs(info.expires.timestamp() - at.timestamp()) < 1
    assert acc.parse(acc.mint("r")).id != acc.parse(acc.mint("r")).id  # a fresh id per token
    with pytest.raises(TokenError) as expired:
        acc.verify(acc.mint("r", expires=timedelta(seconds=-1)), "r")
    assert expired.value.code == 4401 and "expired" in str(expired.value)
    for bad_name in ("", " ", "x" * 65, "a\nb"):
        with pytest.raises(ValueError):
            acc.mint("r", name=bad_name)


def test_strict_parsing(tmp_path):
    acc = Access.load(tmp_path)
    t = acc.mint("r", "view", name="n")
    for bad in (t + "\n", " " + t, t + ".", t.replace(".view.", ".admin."), t.replace("v2.r.", "v2.r!."),
                t.replace("v2.", "v3."), "x" * 10_000, "v2" + "." * 6):
        with pytest.raises(TokenError) as info:
            acc.verify(bad, "r")
        assert str(info.value) == "malformed token", bad
    assert acc.check(t.replace("v2.r.", "v2.s."), "s") is None  # a signed field changed: bad MAC


def test_revocation_reaches_another_process_view_within_a_second(tmp_path):
    server, cli = Access.load(tmp_path), Access.load(tmp_path)  # as the server and `inhabit revoke` see it
    a, b = server.mint("r", "edit"), server.mint("r", "view")
    assert server.check(a, "r") == "edit"
    assert cli.revoke(a) == server.parse(a).id
    deadline = time.monotonic() + 3
    while server.check(a, "r") is not None:
        assert time.monotonic() < deadline, "revocation not seen"
        time.sleep(0.1)
    assert server.check(b, "r") == "view"
    with pytest.raises(TokenError, match="revoked"):
        cli.verify(a, "r")
    with pytest.raises(ValueError):
        cli.revoke("junk id!")
    with pytest.raises(TokenError):
        cli.revoke(Access(b"another-secret-0123456789").mint("r"))


async def test_refusals_have_close_codes(server):
    base = server.ws
    code, reason = await close_code(f"{base}/r")
    assert code == 4401 and "token" in reason
    code, _ = await close_code(f"{base}/r?token=garbage")
    assert code == 4401
    code, reason = await close_code(f"{base}/r?token={server.token('other', 'edit')}")
    assert code == 4403 and "another room" in reason
    code, _ = await close_code(f"{base}/bad%20name!?token={server.token()}")
    assert code == 4400
    code, _ = await close_code(f"{base}/{'x' * 65}?token={server.token()}")
    assert code == 4400
    with pytest.raises(ClientError) as info:
        await CanvasClient.connect(base, "r", "garbage")
    assert info.value.code == 4401


async def test_view_token_cannot_write(server):
    editor = await CanvasClient.connect(server.ws, "v", server.token("v", "edit"))
    editor.doc.add_strokes([Stroke(id="e1", points=[1, 1, 0.5])])
    viewer = await CanvasClient.connect(server.ws, "v", server.token("v", "view"))
    try:
        await viewer.wait_for(lambda d: d.stroke("e1"), 5)
        viewer.doc.add_strokes([Stroke(id="v1", points=[2, 2, 0.5])])
        await viewer.wait_for(lambda: viewer.read_only, 5)
        assert "read-only" in viewer.read_only
        # the viewer still sees the editor's writes; nobody else sees the viewer's
        editor.doc.add_strokes([Stroke(id="e2", points=[1, 1, 0.5])])
        await viewer.wait_for(lambda d: d.stroke("e2"), 5)
        fresh = await CanvasClient.connect(server.ws, "v", server.token("v", "edit"))
        assert set(fresh.doc.stroke_ids()) == {"e1", "e2"}
        assert editor.doc.stroke("v1") is None
        await fresh.close()
    finally:
        await viewer.close()
        await editor.close()


async def test_open_mode_needs_no_token(server_factory):
    srv = server_factory(open=True)
    c = await CanvasClient.connect(srv.ws, "o")
    c.doc.add_strokes([Stroke(id="o1", points=[1, 1, 0.5])])
    d = await CanvasClient.connect(srv.ws, "o")
    await d.wait_for(lambda doc: doc.stroke("o1"), 5)
    await c.close()
    await d.close()
