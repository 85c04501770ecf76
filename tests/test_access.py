"""Tokens: refused with clear close codes; a view token cannot write and is told so."""

from __future__ import annotations

import asyncio

import pytest
import websockets

from canvas import Stroke
from common.access import Access
from wire.client import CanvasClient, ClientError

pytestmark = pytest.mark.timeout(60)


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
