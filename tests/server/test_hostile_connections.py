"""One view link must not hurt the server, the room or anyone else: each attack, tried for real.

A real `inhabit serve` on loopback; attackers are raw `websockets` clients holding a VIEW token
(frames built with wire.protocol), bystanders are CanvasClients. Each test asserts the bound:
the attacker is closed, its socket really goes away, server RSS stays bounded, a bystander in
another room keeps its latency, presence stays small, ids stay with their owners.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import socket
import time
from typing import Any
from urllib.parse import quote

import httpx
import psutil
import pytest
import websockets
from pycrdt import Doc, Text

from canvas import Stroke
from server.websocket import transport_of
from wire import protocol as p
from wire.client import CanvasClient

pytestmark = [pytest.mark.timeout(120), pytest.mark.serial]  # timing-sensitive: runs alone under xdist (support/serial.py)

MiB = 1024 * 1024


# ---- probes on the server process -----------------------------------------------------------

def rss_mib(server: Any) -> float:
    return psutil.Process(server.proc.pid).memory_info().rss / MiB


def open_sockets(server: Any) -> int:
    """Established TCP connections the server process holds on its port."""
    conns = psutil.Process(server.proc.pid).net_connections(kind="tcp")
    return sum(1 for c in conns if c.status == psutil.CONN_ESTABLISHED and c.laddr.port == server.port)


def metric(server: Any, name: str) -> float:
    """`inhabit_<name>` from /metrics (counters end in `_total`; `connections` is the open ones)."""
    text = httpx.get(server.http + "/metrics", timeout=5).text
    for line in text.splitlines():
        if line.startswith(f"inhabit_{name} "):
            return float(line.split()[-1])
    raise AssertionError(f"no metric {name}")


async def eventually(pred: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(pred):
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        await asyncio.sleep(0.2)


class RssPeak:
    """Samples the server's RSS in the background; `.peak` is the highest seen."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.peak = rss_mib(server)
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            self.peak = max(self.peak, await asyncio.to_thread(rss_mib, self.server))
            await asyncio.sleep(0.1)

    def stop(self) -> float:
        self.task.cancel()
        return self.peak


# ---- peers ---------------------------------------------------------------------------------

def url(server: Any, room: str, role: str) -> str:
    return f"{server.ws}/{room}?token={quote(server.token(room, role))}"


async def non_reader(server: Any, room: str, role: str = "view") -> Any:
    """A peer that never reads: a tiny receive buffer, and a client that stops after 1 frame."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", server.port))
    return await websockets.connect(url(server, room, role), sock=sock, max_queue=1, ping_interval=None,
                                    max_size=None, open_timeout=10)


async def closed_with(ws: Any, timeout: float = 10.0) -> tuple[int | None, str]:
    """Read until the server closes us; (close code, reason). 1006 = transport cut."""
    with pytest.raises(websockets.ConnectionClosed):
        async with asyncio.timeout(timeout):
            while True:
                await ws.recv()
    return ws.close_code, ws.close_reason


def drop(ws: Any) -> None:
    ws.transport.abort()


async def fill_room(server: Any, room: str, mib: float) -> CanvasClient:
    """An editor whose room holds about `mib` MiB (strokes of random floats), all committed."""
    editor = await CanvasClient.connect(server.ws, room, server.token(room, "edit"), name="editor")
    rnd = random.Random(1)
    n = int(mib * MiB / (3 * 9 * 10_000)) + 1  # a float costs 9 bytes in a Yjs update
    for i in range(n):
        pts = [v for _ in range(10_000) for v in (rnd.uniform(-1e5, 1e5), rnd.uniform(-1e5, 1e5), rnd.random())]
        editor.doc.add_strokes([Stroke(id=f"big{i}", points=pts)])
        await editor.flush(30)
    return editor


async def round_trip(a: CanvasClient, b: CanvasClient, i: int) -> float:
    """Seconds for a stroke drawn by `a` to reach `b`."""
    t0 = time.monotonic()
    a.doc.add_strokes([Stroke(id=f"ping{i}", points=[float(i), 0.0, 0.5])])
    await b.wait_for(lambda: b.doc.stroke(f"ping{i}") is not None, 10)
    return time.monotonic() - t0


async def latencies_during(a: CanvasClient, b: CanvasClient, attack: Any) -> list[float]:
    """Round trips between two bystanders for as long as `attack` runs."""
    out = []
    i = 0
    while not attack.done():
        out.append(await round_trip(a, b, i))
        i += 1
        await asyncio.sleep(0.1)
    await attack
    return out


# ---- 1. sync requests --------------------------------------------------------------------------

def random_sv(rnd: random.Random, shared: int | None) -> bytes:
    """A non-empty state vector; with `shared`, it claims clock 1 of that client of the room."""
    pairs = [(rnd.getrandbits(32), rnd.randrange(1, 1000)) for _ in range(3)]
    if shared is not None:
        pairs.append((shared, 1))
    parts = [p.write_var_uint(len(pairs))]
    for client, clock in pairs:
        parts += [p.write_var_uint(client), p.write_var_uint(clock)]
    return b"".join(parts)


async def test_sync_request_flood_is_bounded(server_factory):
    server = server_factory()
    editor = await fill_room(server, "big", 4)
    a = await CanvasClient.connect(server.ws, "calm", server.token("calm", "edit"), name="a")
    b = await CanvasClient.connect(server.ws, "calm", server.token("calm", "edit"), name="b")
    await asyncio.sleep(0.5)
    base = rss_mib(server)
    peak = RssPeak(server)
    attacker = await non_reader(server, "big")
    rnd = random.Random(2)

    async def flood() -> None:  # half share nothing (the cached reply), half force an encode
        with contextlib.suppress(websockets.ConnectionClosed):  # cut off mid-flood
            for i in range(500):
                await attacker.send(p.sync_step1(random_sv(rnd, editor.client_id if i % 2 else None)))
        # it never reads, so it cannot tell it was closed: look from the server's side
        await eventually(lambda: metric(server, "connections") == 3, 15, "the attacker leaves the room")
        await eventually(lambda: open_sockets(server) == 3, 10, "the attacker's socket goes away")

    lat = await latencies_during(a, b, asyncio.get_running_loop().create_task(flood()))
    grown = peak.stop() - base
    assert max(lat) < 1.0, f"bystander round trips during the attack: max {max(lat):.3f} s"
    assert grown < 150, f"server RSS grew {grown:.0f} MiB under a sync-request flood"
    assert metric(server, "slow_closed_total") + metric(server, "policy_closed_total") >= 1
    print(f"sync flood: RSS +{grown:.0f} MiB at peak, bystander max round trip {max(lat) * 1000:.0f} ms")
    await eventually(lambda: rss_mib(server) - base < 60, 10, "memory comes back after disconnect")
    for c in (a, b, editor):
        await c.close()


# ---- 2. connections that never close -----------------------------------------------------------

def text_update(name: str, size: int) -> bytes:
    """A SyncUpdate frame carrying a text of `size` random letters (the room takes any update)."""
    doc = Doc()
    doc[name] = Text("".join(random.choices("abcdefghij", k=size)))
    return p.sync_update(doc.get_update())


async def feed(writer: Any, mib: int) -> None:
    """About `mib` MiB of updates, paced like a busy room: more than the kernel's socket buffers
    (4 MiB here) can absorb for a peer that does not read, trivial for one that does."""
    await writer.send(text_update("filler", 2 * MiB))
    for i in range((mib - 2) * 5):
        await writer.send(text_update(f"more{i}", 200 * 1024))
        await asyncio.sleep(0.1)


@pytest.mark.parametrize("cause", ["overflow", "keepalive"])
async def test_non_reading_viewers_are_cut_off(server_factory, cause):
    # overflow: the backlog outgrows send_queue_bytes; keepalive: no pong comes back (and the
    # backlog stays within bounds), uvicorn gives up on the peer but its close would wait forever
    settings = {"send_queue_bytes": 512 * 1024} if cause == "overflow" else {"ping_interval": 1}
    server = server_factory(**settings)
    room = "stuck"
    watcher = await CanvasClient.connect(server.ws, room, server.token(room, "view"), name="watcher")
    viewers = [await non_reader(server, room) for _ in range(20)]
    writer = await websockets.connect(url(server, room, "edit"), max_size=None)
    base = rss_mib(server)
    peak = RssPeak(server)
    t0 = time.monotonic()
    await feed(writer, 8)
    await eventually(lambda: metric(server, "connections") == 2, 15, "the non-reading viewers leave the room")
    await eventually(lambda: open_sockets(server) == 2, 10, "their sockets go away")
    took = time.monotonic() - t0
    grown = peak.stop() - base
    print(f"{cause}: 20 non-readers cut off {took:.1f} s after the first update; RSS +{grown:.0f} MiB at peak")
    assert grown < 150, f"server RSS grew {grown:.0f} MiB"
    assert took < 20
    assert metric(server, "slow_closed_total") == (20 if cause == "overflow" else 0)
    # the honest peers are untouched and have everything
    last = watcher.doc.doc.get("more29", type=Text)
    await watcher.wait_for(lambda: len(last) == 200 * 1024, 10)
    assert watcher.synced.is_set() and writer.close_code is None
    for v in viewers:
        drop(v)
    await writer.close()
    await watcher.close()


# ---- 3. presence flood -------------------------------------------------------------------------

def presence(cid: int, size: int, clock: int = 1) -> bytes:
    state = json.dumps({"user": {"name": "m" * size}})
    return p.awareness_message(p.encode_awareness([(cid, clock, state)]))


async def greeting_bytes(server: Any, room: str) -> int:
    """Bytes of awareness a newcomer is greeted with."""
    async with websockets.connect(url(server, room, "view"), max_size=None) as ws:
        total = 0
        try:
            async with asyncio.timeout(1.5):
                while True:
                    frame = await ws.recv()
                    if frame[0] == p.MSG_AWARENESS:
                        total += len(frame)
        except TimeoutError:
            return total


async def test_presence_flood_is_bounded(server_factory):
    server = server_factory(awareness_bytes=4096, awareness_ids=4)
    room = "crowd"
    big = await websockets.connect(url(server, room, "view"))
    await big.send(presence(1, 8000))
    code, reason = await closed_with(big)
    assert code == 1008 and "awareness state" in reason and "4096" in reason

    many = await websockets.connect(url(server, room, "view"))
    for cid in range(100, 110):
        await many.send(presence(cid, 10))
    code, reason = await closed_with(many)
    assert code == 1008 and "awareness client ids" in reason

    # at its bounds a connection stays, and what a newcomer is greeted with stays small
    full = await websockets.connect(url(server, room, "view"))
    for cid in range(200, 204):
        await full.send(presence(cid, 3900))
    await asyncio.sleep(0.5)
    assert full.close_code is None
    size = await greeting_bytes(server, room)
    assert 4 * 3900 <= size < 4 * 4096 + 1024, f"greeting of {size} bytes"
    await full.close()


# ---- 4. awareness id takeover ------------------------------------------------------------------

async def test_departed_editors_id_is_reserved_to_its_token(server_factory):
    server = server_factory()
    room = "ids"
    observer = await CanvasClient.connect(server.ws, room, server.token(room, "view"), name="observer")
    owner = await websockets.connect(url(server, room, "edit"))
    cid = 777
    await owner.send(p.awareness_message(p.encode_awareness([(cid, 1, json.dumps({"user": {"name": "owner"}}))])))
    await observer.wait_for(lambda: observer.awareness().get(cid, {}).get("user", {}).get("name") == "owner", 5)
    drop(owner)  # gone without a goodbye, as a crash or a network change would
    await observer.wait_for(lambda: cid not in observer.awareness(), 5)

    thief = await websockets.connect(url(server, room, "view"))
    await thief.send(p.awareness_message(p.encode_awareness([(cid, 5, json.dumps({"user": {"name": "thief"}}))])))
    await thief.send(p.awareness_message(p.encode_awareness([(888, 1, json.dumps({"user": {"name": "thief"}}))])))
    await observer.wait_for(lambda: 888 in observer.awareness(), 5)  # frames are handled in order
    assert cid not in observer.awareness(), "a viewer took over a departed editor's awareness id"

    back = await websockets.connect(url(server, room, "edit"))  # the owner's token reclaims it
    await back.send(p.awareness_message(p.encode_awareness([(cid, 6, json.dumps({"user": {"name": "owner again"}}))])))
    await observer.wait_for(lambda: observer.awareness().get(cid, {}).get("user", {}).get("name") == "owner again", 5)
    await thief.close()
    await back.close()
    await observer.close()


# ---- 5. receive rate ---------------------------------------------------------------------------

async def test_message_flood_is_slowed_then_closed(server_factory):
    server = server_factory(recv_messages_per_s=50)
    room = "noisy"
    a = await CanvasClient.connect(server.ws, "calm", server.token("calm", "edit"), name="a")
    b = await CanvasClient.connect(server.ws, "calm", server.token("calm", "edit"), name="b")
    before = metric(server, "messages_in_total")
    attacker = await websockets.connect(url(server, room, "view"))
    t0 = time.monotonic()
    noop = p.sync_update(p.EMPTY_UPDATE)

    async def flood() -> None:
        with pytest.raises(websockets.ConnectionClosed):
            async with asyncio.timeout(30):
                while True:
                    await attacker.send(noop)
                    await asyncio.sleep(0)  # flat out, but let the bystanders in this process run

    lat = await latencies_during(a, b, asyncio.get_running_loop().create_task(flood()))
    took = time.monotonic() - t0
    received = metric(server, "messages_in_total") - before
    assert attacker.close_code == 1008 and "messages/s" in attacker.close_reason
    assert 4 < took < 15, f"closed after {took:.1f} s"
    assert received < 50 * (took + 2) + 200, f"{received} messages taken in {took:.1f} s at 50/s"
    assert max(lat) < 1.0
    await a.close()
    await b.close()


# ---- the one reach below ASGI ------------------------------------------------------------------

def test_transport_of_says_clearly_when_uvicorn_changes():
    class NotUvicorn:
        async def _receive(self) -> None: ...

    ws = type("WS", (), {"_receive": staticmethod(lambda: None)})()
    with pytest.raises(RuntimeError, match="transport"):
        transport_of(ws)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="websockets-sansio"):
        transport_of(NotUvicorn())  # type: ignore[arg-type]
