"""Rooms: peers converge, awareness comes and goes, HTTP reads, unload and reload."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from canvas import Stroke
from wire.client import CanvasClient

from support.live_server import LiveServer

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def server(shared_server: LiveServer) -> LiveServer:
    """These tests only need rooms of their own: one server for the module."""
    return shared_server


def stroke(i: int | str, author: str = "t") -> Stroke:
    return Stroke(id=f"s{i}", points=[0, 0, 0.5, float(i) if isinstance(i, int) else 1.0, 2, 0.5], author=author)


async def scrape(http: httpx.AsyncClient) -> dict[str, float]:
    """/metrics parsed as the Prometheus text format: sample name -> value (we use no labels)."""
    r = await http.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain"), r.headers
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            assert not sample.labels and sample.name not in samples, sample
            samples[sample.name] = sample.value
    return samples


async def scrape_until(http: httpx.AsyncClient, pred, timeout: float = 10) -> dict[str, float]:
    """Scrape until `pred(samples)` holds; the samples that satisfied it."""
    deadline = time.monotonic() + timeout
    while not pred(m := await scrape(http)):
        assert time.monotonic() < deadline, f"metrics never got there: {m}"
        await asyncio.sleep(0.05)
    return m


async def test_stroke_from_one_appears_at_others(server):
    tok = server.token("*", "edit")
    a, b, c = [await CanvasClient.connect(server.ws, "r1", tok, name=n) for n in "abc"]
    try:
        a.doc.add_strokes([stroke(1, "a")])
        for peer in (b, c):
            got = await peer.wait_for(lambda d: d.stroke("s1"), 5)
            assert got.author == "a"
    finally:
        for p in (a, b, c):
            await p.close()


async def test_concurrent_writers_converge(server):
    tok = server.token("r2", "edit")
    peers = [await CanvasClient.connect(server.ws, "r2", tok, name=f"p{i}") for i in range(4)]
    try:
        for round_ in range(5):
            for i, peer in enumerate(peers):
                peer.doc.add_strokes([stroke(f"{i}_{round_}")])
        want = {f"s{i}_{r}" for i in range(4) for r in range(5)}
        for peer in peers:
            await peer.wait_for(lambda d: set(d.stroke_ids()) == want, 5)
        peers[0].doc.erase(["s0_0"])
        for peer in peers:
            await peer.wait_for(lambda d: "s0_0" not in d.stroke_ids(), 5)
        late = await CanvasClient.connect(server.ws, "r2", tok)
        assert set(late.doc.stroke_ids()) == want - {"s0_0"}
        await late.close()
    finally:
        for p in peers:
            await p.close()


async def test_awareness_appears_and_disappears_on_close(server):
    tok = server.token()
    a = await CanvasClient.connect(server.ws, "aw", tok, name="alice")
    a.set_awareness({"cursor": {"x": 3, "y": 4}})
    b = await CanvasClient.connect(server.ws, "aw", tok, name="bob")
    try:
        # the newcomer is sent the states already present
        await b.wait_for(lambda: any(s.get("user", {}).get("name") == "alice" and s.get("cursor") == {"x": 3, "y": 4} for s in b.awareness().values()), 5)
        await a.wait_for(lambda: any(s.get("user", {}).get("name") == "bob" for s in a.awareness().values()), 5)
        # a closes its socket WITHOUT announcing removal: the server must remove it
        await a.abort()
        await b.wait_for(lambda: not any(s.get("user", {}).get("name") == "alice" for s in b.awareness().values()), 5)
    finally:
        await b.close()


async def test_http_strokes_whoami_healthz_metrics(server_factory):
    server = server_factory()  # its own: the metrics count every room the server loaded
    tok = server.token("h", "view")
    a = await CanvasClient.connect(server.ws, "h", server.token("h", "edit"))
    a.doc.add_strokes([stroke(7)])
    async with httpx.AsyncClient(base_url=server.http) as http:
        deadline = time.monotonic() + 5
        while True:  # the server applies the update a moment after the client sends it
            r = await http.get("/rooms/h/strokes", params={"token": tok})
            assert r.status_code == 200
            if r.json()["strokes"] or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        assert [s["id"] for s in r.json()["strokes"]] == ["s7"]
        r = await http.get("/rooms/h/whoami", headers={"Authorization": f"Bearer {tok}"})
        assert r.json() == {"room": "h", "role": "view"}
        assert (await http.get("/rooms/h/strokes")).status_code == 401
        assert (await http.get("/rooms/other/strokes", params={"token": tok})).status_code == 401
        assert (await http.get("/healthz")).json()["ok"] is True
        m = await scrape_until(http, lambda m: m["inhabit_persistence_pending"] == 0 and m["inhabit_persistence_rows_written_total"] > 0)
        assert m["inhabit_connections"] == 1  # open now
        assert m["inhabit_connections_accepted_total"] == 1  # accepted ever
        assert m["inhabit_rooms"] == 1 and m["inhabit_rooms_loaded_total"] == 1 and m["inhabit_rooms_unloaded_total"] == 0
        assert m["inhabit_rejected_total"] == 0 and m["inhabit_bad_input_total"] == 0 and m["inhabit_slow_closed_total"] == 0
        assert m["inhabit_persistence_rows_written_total"] == 1  # the one stroke update
        assert m["inhabit_persistence_lag_seconds"] == 0 and m["inhabit_persistence_errors_total"] == 0
        assert m["inhabit_agent_peers"] == 0
        assert m["inhabit_messages_in_total"] >= 2 and m["inhabit_bytes_in_total"] > m["inhabit_messages_in_total"]
        assert (await http.get("/")).status_code == 200
    await a.close()


async def test_unload_after_grace_and_reload(server_factory):
    srv = server_factory(unload_grace=0.5)
    tok = srv.token()
    a = await CanvasClient.connect(srv.ws, "u", tok)
    a.doc.add_strokes([stroke(i) for i in range(3)])
    b = await CanvasClient.connect(srv.ws, "u", tok)
    await b.wait_for(lambda d: len(d.stroke_ids()) == 3, 5)
    await a.close()
    await b.close()
    async with httpx.AsyncClient(base_url=srv.http) as http:
        m = await scrape_until(http, lambda m: m["inhabit_rooms"] == 0)
        assert m["inhabit_rooms_unloaded_total"] == 1 and m["inhabit_rooms_loaded_total"] == 1
        assert m["inhabit_connections"] == 0 and m["inhabit_connections_accepted_total"] == 2
        c = await CanvasClient.connect(srv.ws, "u", tok)
        assert len(c.doc.stroke_ids()) == 3
        m = await scrape(http)
        assert m["inhabit_rooms"] == 1 and m["inhabit_rooms_loaded_total"] == 2 and m["inhabit_connections"] == 1
        await c.close()


@pytest.mark.serial  # timing-sensitive: runs alone under xdist
async def test_join_big_room_is_fast(server):
    tok = server.token()
    a = await CanvasClient.connect(server.ws, "big", tok)
    for k in range(20):
        a.doc.add_strokes([Stroke(id=f"b{k}_{j}", points=[float(j % 50), 1.0, 0.5] * 10) for j in range(500)])
    await asyncio.sleep(0.3)
    b = await CanvasClient.connect(server.ws, "big", tok)
    await b.wait_for(lambda d: len(d.stroke_ids()) == 10_000, 10)
    await b.close()
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        c = await CanvasClient.connect(server.ws, "big", tok)
        times.append(time.perf_counter() - t0)
        assert len(c.doc.stroke_ids()) == 10_000
        await c.close()
    print(f"join 10k-stroke room: {[round(t * 1000, 1) for t in times]} ms")
    assert min(times) < 0.25
    await a.close()
