"""Awareness ownership: a connection may only speak for the awareness client ids it announced.

Real server, real websocket peers: A (CanvasClient) is the victim, B (raw websocket) forges
awareness entries for A's client id, C (CanvasClient) and R (raw websocket) observe.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any
from urllib.parse import quote

import pytest
import websockets

from wire import protocol as p
from wire.client import CanvasClient

from support.live_server import LiveServer

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def server(shared_server: LiveServer) -> LiveServer:
    """These tests only need rooms of their own: one server for the module."""
    return shared_server


B_ID = 4242


class Raw:
    """A raw y-websocket peer that records every awareness entry it receives."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.entries: list[tuple[int, int, str]] = []
        self.changed = asyncio.Event()
        self.task = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def connect(cls, ws_base: str, room: str, token: str) -> Raw:
        ws = await websockets.connect(f"{ws_base}/{room}?token={quote(token)}")
        return cls(ws)

    async def _read(self) -> None:
        async for frame in self.ws:
            if isinstance(frame, bytes) and frame and frame[0] == p.MSG_AWARENESS:
                self.entries += p.parse_awareness(p.decode_awareness_payload(frame))
                self.changed.set()

    def state(self, cid: int) -> dict[str, Any] | None:
        """The latest state seen for `cid` (None if removed or never seen)."""
        cur: tuple[int, str] | None = None
        for c, clock, st in self.entries:
            if c == cid and (cur is None or clock >= cur[0]):
                cur = (clock, st)
        return None if cur is None else json.loads(cur[1])

    async def wait_for(self, pred: Any, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not pred():
            left = deadline - time.monotonic()
            assert left > 0, "condition not met in time"
            self.changed.clear()
            try:
                async with asyncio.timeout(left):
                    await self.changed.wait()
            except TimeoutError:
                pass

    async def send_awareness(self, entries: list[tuple[int, int, str]]) -> None:
        await self.ws.send(p.awareness_message(p.encode_awareness(entries)))

    async def close(self) -> None:
        await self.ws.close()
        self.task.cancel()


def named(client: CanvasClient, name: str) -> bool:
    return any(s.get("user", {}).get("name") == name for s in client.awareness().values())


async def test_forged_update_and_removal_change_nothing(server):
    tok = server.token()
    room = "own"
    a = await CanvasClient.connect(server.ws, room, tok, name="alice")
    a.set_awareness({"cursor": {"x": 1, "y": 2}})
    c = await CanvasClient.connect(server.ws, room, tok, name="carol")
    r = await Raw.connect(server.ws, room, tok)
    b = await Raw.connect(server.ws, room, tok)
    try:
        aid = a.client_id
        await c.wait_for(lambda: c.awareness().get(aid, {}).get("cursor") == {"x": 1, "y": 2}, 5)
        await r.wait_for(lambda: (r.state(aid) or {}).get("cursor") == {"x": 1, "y": 2})
        seen_before = len(r.entries)

        forged = json.dumps({"user": {"name": "mallory"}, "cursor": {"x": 666, "y": 666}})
        await b.send_awareness([(aid, 10_000, forged)])              # spoof A's presence
        await b.send_awareness([(aid, 20_000, "null")])              # remove A's presence
        await b.send_awareness([(aid, 30_000, "null"), (B_ID, 1, json.dumps({"user": {"name": "bob"}}))])  # mixed
        # B's own state propagates (the forged entry of the mixed frame is cut out) ...
        await c.wait_for(lambda: c.awareness().get(B_ID, {}).get("user", {}).get("name") == "bob", 5)
        await r.wait_for(lambda: r.state(B_ID) is not None)
        # ... and, frames being handled in order, every forgery has been dealt with by now
        assert c.awareness()[aid]["cursor"] == {"x": 1, "y": 2}
        assert named(c, "alice") and not named(c, "mallory")
        assert all(cid != aid for cid, _, _ in r.entries[seen_before:]), "a forged entry for A was broadcast"

        # B updates its own state: propagates
        await b.send_awareness([(B_ID, 2, json.dumps({"user": {"name": "bob"}, "cursor": {"x": 5, "y": 5}}))])
        await c.wait_for(lambda: c.awareness().get(B_ID, {}).get("cursor") == {"x": 5, "y": 5}, 5)

        # a newcomer and a query-awareness both get A's genuine state
        d = await CanvasClient.connect(server.ws, room, tok, name="dave")
        try:
            await d.wait_for(lambda: d.awareness().get(aid, {}).get("cursor") == {"x": 1, "y": 2} and B_ID in d.awareness(), 5)
        finally:
            await d.close()
        mark = len(r.entries)
        await r.ws.send(bytes([p.MSG_QUERY_AWARENESS]))
        await r.wait_for(lambda: any(cid == aid for cid, _, _ in r.entries[mark:]))
        assert (r.state(aid) or {}).get("cursor") == {"x": 1, "y": 2}

        # A still controls its own presence
        a.set_awareness({"cursor": {"x": 7, "y": 8}})
        await c.wait_for(lambda: c.awareness().get(aid, {}).get("cursor") == {"x": 7, "y": 8}, 5)

        # B removes its own state: propagates; A untouched
        await b.send_awareness([(B_ID, 3, "null")])
        await c.wait_for(lambda: B_ID not in c.awareness(), 5)
        assert named(c, "alice")
    finally:
        await b.close()
        await r.close()
        await c.close()
        await a.close()


async def test_removal_on_close_still_works_and_id_is_released(server):
    tok = server.token()
    room = "own2"
    c = await CanvasClient.connect(server.ws, room, tok, name="carol")
    a = await Raw.connect(server.ws, room, tok)
    b = await Raw.connect(server.ws, room, tok)
    try:
        await a.send_awareness([(B_ID, 1, json.dumps({"user": {"name": "alice"}}))])
        await c.wait_for(lambda: named(c, "alice"), 5)
        # B cannot remove A's state, even closing its own socket right after trying
        await b.send_awareness([(B_ID, 99, "null")])
        await b.close()
        await asyncio.sleep(0.3)
        assert named(c, "alice")
        # A vanishes without announcing removal: the server removes its state for everyone
        await a.ws.close()
        a.task.cancel()
        await c.wait_for(lambda: not named(c, "alice"), 5)
        # the id is free again once its owner left (a client reconnecting with the same id)
        a2 = await Raw.connect(server.ws, room, tok)
        try:
            await a2.send_awareness([(B_ID, 5, json.dumps({"user": {"name": "alice again"}}))])
            await c.wait_for(lambda: named(c, "alice again"), 5)
        finally:
            await a2.close()
        await c.wait_for(lambda: not named(c, "alice again"), 5)
    finally:
        await c.close()
