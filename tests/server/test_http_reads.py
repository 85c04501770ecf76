"""HTTP reads behave like the websocket (issue 19): `/strokes` is served from the room's strokes
encoded once, streamed with a per-connection bound and a write timeout, and limited per link.

Against a real server: raw sockets that send a request and never read (the attack), the
server's RSS from /proc, its /metrics counters, and the answer compared byte for byte with what
`StrokesResponse` over `CanvasDoc.strokes()` gives.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import time
from collections.abc import Iterator

import httpx
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from canvas import Stroke
from server.http import StrokesResponse
from wire.client import CanvasClient

from support.live_server import LiveServer

pytestmark = pytest.mark.timeout(120)

POINTS = 10_000


def long_stroke(i: int, rng: random.Random) -> Stroke:
    """A 10,000-point stroke whose JSON is ~0.5 MB (coordinates with all their digits)."""
    points: list[float] = []
    for _ in range(POINTS):
        points += [rng.uniform(-1000, 1000), rng.uniform(-1000, 1000), 0.5]
    return Stroke(id=f"long{i}", points=points, t=1_000 + i)


async def fill(server: LiveServer, room: str, n: int) -> CanvasClient:
    """An editor connected to `room` after drawing `n` long strokes (a few per update)."""
    rng = random.Random(n)
    client = await CanvasClient.connect(server.ws, room, server.token(room, "edit"))
    for start in range(0, n, 4):
        client.doc.add_strokes([long_stroke(i, rng) for i in range(start, min(n, start + 4))])
        await client.flush()
    return client


async def metrics(http: httpx.AsyncClient) -> dict[str, float]:
    r = await http.get("/metrics")
    return {s.name: s.value for f in text_string_to_metric_families(r.text) for s in f.samples}


async def read_all(http: httpx.AsyncClient, room: str, token: str, n: int) -> httpx.Response:
    """The room's strokes once the server holds `n` of them (it applies updates as they arrive)."""
    deadline = time.monotonic() + 30
    while True:
        r = await http.get(f"/rooms/{room}/strokes", params={"token": token})
        assert r.status_code == 200, r.text
        if len(r.json()["strokes"]) >= n or time.monotonic() > deadline:
            return r
        await asyncio.sleep(0.2)


def unread(port: int, path: str) -> socket.socket:
    """A client that sends one request and never reads the answer (a tiny receive window, so the
    server's side holds what the client's kernel would otherwise swallow)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    return s


TCP_ESTABLISHED = 1
"""`tcpi_state` of a connection the server has not ended (linux/tcp_states.h)."""


def cut(s: socket.socket) -> bool:
    """Whether the server has ended this connection (RST or FIN), asked of the kernel: reading
    would make the client a reader."""
    return s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0] != TCP_ESTABLISHED


def rss(pid: int) -> int:
    return int(psutil.Process(pid).memory_info().rss)


@contextlib.contextmanager
def closing_all(socks: list[socket.socket]) -> Iterator[list[socket.socket]]:
    try:
        yield socks
    finally:
        for s in socks:
            s.close()


@pytest.mark.serial
async def test_unread_answers_hold_little_and_are_cut(server_factory):
    timeout_s = 3
    server = server_factory(http_write_timeout_s=timeout_s, http_read_concurrency=1, recv_bytes_per_s=64 * 1024 * 1024)
    room, n = "big", 24
    client = await fill(server, room, n)
    try:
        async with httpx.AsyncClient(base_url=server.http, timeout=60) as http:
            body = await read_all(http, room, server.token(room, "edit"), n)  # warm: the room is encoded once
            size = len(body.content)
            assert size * 12 > 100 * 1024 * 1024, "12 whole answers would be far past the bound"
            assert server.proc is not None
            before = rss(server.proc.pid)
            access = server.access()
            tokens = [access.mint(room, "view") for _ in range(12)]  # 12 links, one read each
            with closing_all([unread(server.port, f"/rooms/{room}/strokes?token={t}") for t in tokens]) as socks:
                peak, until = before, time.monotonic() + 2  # the server writes what it will meanwhile
                while time.monotonic() < until:
                    peak = max(peak, rss(server.proc.pid))
                    await asyncio.sleep(0.1)
                assert peak - before < 50 * 1024 * 1024, f"12 unread answers of {size >> 20} MB held {(peak - before) >> 20} MB"
                # a link has at most --http-read-concurrency reads in flight
                r = await http.get(f"/rooms/{room}/strokes", params={"token": tokens[0]})
                assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1 and r.json()["retry_after"] >= 1, r.text
                # a client that takes nothing for the write timeout is cut
                deadline = time.monotonic() + timeout_s + 10
                while not all(cut(s) for s in socks) and time.monotonic() < deadline:
                    await asyncio.sleep(0.1)
                assert all(cut(s) for s in socks), "every unread answer was cut"
                assert (await metrics(http))["inhabit_http_reads_cut_total"] == 12
            # its read no longer in flight, the link reads again
            r = await http.get(f"/rooms/{room}/strokes", params={"token": tokens[0], "limit": 1})
            assert r.status_code == 200 and len(r.json()["strokes"]) == 1
    finally:
        await client.close()


async def test_strokes_are_encoded_once_and_read_as_before(server_factory):
    server = server_factory()
    room, n = "tenk", 6
    client = await fill(server, room, n)
    client.doc.strokes_map["bad"] = {"id": "bad", "points": [1.0]}  # skipped, as CanvasDoc.strokes() skips it
    client.doc.add_strokes([Stroke(id="small", points=[1, 2, 0.5], t=1_003, run="r1")])  # ints, same t as long3
    await client.flush()
    token = server.token(room, "view")
    try:
        async with httpx.AsyncClient(base_url=server.http, timeout=60) as http:
            first = await read_all(http, room, token, n + 1)
            expected = StrokesResponse(room=room, strokes=client.doc.strokes()).model_dump_json(exclude_none=True).encode()
            assert first.content == expected, "byte for byte what the route answered before"
            assert first.headers["content-type"] == "application/json"
            encoded = (await metrics(http))["inhabit_strokes_encoded_total"]
            assert encoded >= n + 1
            for _ in range(3):  # reads parse nothing
                again = await http.get(f"/rooms/{room}/strokes", params={"token": token})
                assert again.content == expected
            assert (await metrics(http))["inhabit_strokes_encoded_total"] == encoded
            # a change is encoded once, when it arrives
            client.doc.erase(["long2"])
            client.doc.add_strokes([Stroke(id="late", points=[5, 5, 1], t=2_000)])
            await client.flush()
            deadline = time.monotonic() + 10
            while (after := await http.get(f"/rooms/{room}/strokes", params={"token": token})).json()["strokes"][-1]["id"] != "late":
                assert time.monotonic() < deadline
                await asyncio.sleep(0.1)
            assert after.content == StrokesResponse(room=room, strokes=client.doc.strokes()).model_dump_json(exclude_none=True).encode()
            assert (await metrics(http))["inhabit_strokes_encoded_total"] == encoded + 1
            # paged: the same strokes, `next` until the last page
            ids, cursor = [], None
            while True:
                params = {"token": token, "limit": "2", **({"after": cursor} if cursor else {})}
                page = (await http.get(f"/rooms/{room}/strokes", params=params)).json()
                ids += [s["id"] for s in page["strokes"]]
                cursor = page.get("next")
                if cursor is None:
                    break
            assert ids == [s.id for s in client.doc.strokes()]
            page = (await http.get(f"/rooms/{room}/strokes", params={"token": token, "after": "long1"})).json()
            assert [s["id"] for s in page["strokes"]] == ids[ids.index("long1") + 1:]
            for bad in ({"limit": "0"}, {"limit": "x"}, {"after": "nothing-here"}):
                r = await http.get(f"/rooms/{room}/strokes", params={"token": token, **bad})
                assert r.status_code == 400 and r.json()["error"], r.text
    finally:
        await client.close()


async def test_reads_per_link_are_rate_limited(server_factory):
    server = server_factory(http_reads_per_minute=3)
    room = "rated"
    viewer, other = server.token(room, "view"), server.token(room, "edit")
    async with httpx.AsyncClient(base_url=server.http, timeout=10) as http:
        for _ in range(3):  # a minute's worth at once
            assert (await http.get(f"/rooms/{room}/strokes", params={"token": viewer})).status_code == 200
        r = await http.get(f"/rooms/{room}/strokes", params={"token": viewer})
        assert r.status_code == 429, r.text
        assert 1 <= int(r.headers["retry-after"]) <= 20 and r.json()["retry_after"] == int(r.headers["retry-after"])
        assert "3 reads a minute" in r.json()["error"]
        assert (await http.get(f"/rooms/{room}/strokes", params={"token": other})).status_code == 200, "another link reads on"


async def test_cluster_nodes_serve_reads_from_their_encoded_view(cluster):
    a, b = cluster.node(), cluster.node()
    room = "clustered"
    editor = await CanvasClient.connect(a.ws, room, a.token(room, "edit"))
    token = b.token(room, "view")
    try:
        editor.doc.add_strokes([Stroke(id=f"c{i}", points=[i, i, 0.5], t=i) for i in range(3)])
        async with httpx.AsyncClient(base_url=b.http, timeout=30) as http:
            r = await read_all(http, room, token, 3)
            assert r.content == StrokesResponse(room=room, strokes=editor.doc.strokes()).model_dump_json(exclude_none=True).encode()
            editor.doc.add_strokes([Stroke(id="c9", points=[9, 9, 0.5], t=9)])  # reaches b through the room's stream
            editor.doc.erase(["c0"])
            deadline = time.monotonic() + 10
            while [s["id"] for s in (await http.get(f"/rooms/{room}/strokes", params={"token": token})).json()["strokes"]] != ["c1", "c2", "c9"]:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.1)
    finally:
        await editor.close()
