"""Bad input closes only the offender, with the right code; the room and its doc live on."""

from __future__ import annotations

import asyncio

import pytest
import websockets

from canvas import Stroke
from wire.client import CanvasClient

from support.live_server import LiveServer

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def server(shared_server: LiveServer) -> LiveServer:
    """These tests only need rooms of their own: one server for the module."""
    return shared_server


async def offend(url: str, payload: bytes | str) -> tuple[int, str]:
    async with websockets.connect(url, max_size=None) as ws:
        await ws.send(payload)
        with pytest.raises(websockets.ConnectionClosed) as info:
            while True:
                await asyncio.wait_for(ws.recv(), 5)
    return info.value.rcvd.code, info.value.rcvd.reason


@pytest.mark.parametrize(
    "payload,code",
    [
        ("hello", 1003),
        (b"", 1007),
        (b"\x00", 1007),
        (b"\x00\x02\xff\xff\xff", 1007),  # truncated length
        (b"\x00\x02\x05\x01\x02\x03\x04\x05", 1007),  # garbage update
        (b"\x00\x07\x00", 1007),  # unknown sync type
        (b"\x09\x00", 1007),  # unknown message type
        (b"\x01\x03\x05\x01", 1007),  # truncated awareness
    ],
)
async def test_bad_frames_close_with_code(server, room, payload, code):
    tok = server.token()
    good = await CanvasClient.connect(server.ws, room, tok)
    good.doc.add_strokes([Stroke(id="keep", points=[1, 1, 0.5])])
    await asyncio.sleep(0.1)
    got, reason = await offend(f"{server.ws}/{room}?token={tok}", payload)
    assert got == code and reason
    # others unaffected, doc intact, room still accepts writes
    good.doc.add_strokes([Stroke(id="after", points=[2, 2, 0.5])])
    other = await CanvasClient.connect(server.ws, room, tok)
    await other.wait_for(lambda d: {"keep", "after"} <= set(d.stroke_ids()), 5)
    await other.close()
    await good.close()


async def test_oversized_message_is_refused(server_factory):
    srv = server_factory(max_message=64 * 1024)
    tok = srv.token()
    good = await CanvasClient.connect(srv.ws, "big", tok)
    good.doc.add_strokes([Stroke(id="keep", points=[1, 1, 0.5])])
    for size in (64 * 1024 + 10, 1024 * 1024):
        code, reason = await offend(f"{srv.ws}/big?token={tok}", b"\x00\x02" + b"\x00" * size)
        assert code == 1009, (code, reason)
    # a big but allowed update goes through
    good.doc.add_strokes([Stroke(id="long", points=[0.5] * 3000)])
    other = await CanvasClient.connect(srv.ws, "big", tok)
    await other.wait_for(lambda d: {"keep", "long"} <= set(d.stroke_ids()), 5)
    await other.close()
    await good.close()
