"""Cluster mode, revocation and expiry are live (issue 18): a link revoked (`inhabit revoke --database`) cuts
what it holds open on node A within 2 s — its websocket (4401 with the reason, later writes do
not land) and its MCP session (the peer leaves presence, the next call fails) — and an expired
3-s link's websocket on A is cut within 2 s of its expiry. Node A learns of the revocation from
the PostgreSQL table every node re-reads (`common.shared_access`).
"""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import timedelta

import pytest

from canvas import Stroke, new_id
from common.lapses import EXPIRED, REVOKED
from wire.client import CanvasClient

from support import ROOT
from support.mcp_helpers import agents, mcp_client

pytestmark = [pytest.mark.timeout(120), pytest.mark.serial]

CUT_S = 2.0


def stroke(author: str) -> Stroke:
    return Stroke(id=new_id("s"), points=[10, 10, 0.5, 60, 40, 0.5], author=author)


async def test_a_revoked_links_websocket_and_mcp_session_are_cut_on_every_node_within_2s(cluster):
    a, b = cluster.node(), cluster.node()
    room = "cut"
    link = a.access().mint(room, "edit", name="Mallory")
    victim = await CanvasClient.connect(a.ws, room, link, name="victim")
    watcher = await CanvasClient.connect(b.ws, room, b.token(room, "edit"), name="watcher")
    try:
        async with mcp_client(a, room, name="doomed", token=link) as c:
            assert not (await c.call_tool("search", {"query": "draw"})).is_error
            await watcher.wait_for(lambda: "doomed" in agents(watcher) and "victim" in _names(watcher), 10)
            before = stroke("victim")
            victim.doc.add_strokes([before])
            await watcher.wait_for(lambda d: d.stroke(before.id), 5)

            inhabit("revoke", link, "--database", cluster.database_url)  # into the table every node re-reads
            revoked_at = time.monotonic()
            await victim.wait_for(lambda: victim.error is not None, CUT_S + 3)
            took = time.monotonic() - revoked_at
            assert took < CUT_S, f"node A cut the websocket {took:.2f} s after revocation on B"
            assert (victim.error.code, victim.error.reason) == (4401, REVOKED)
            await watcher.wait_for(lambda: "doomed" not in agents(watcher), max(0.1, CUT_S - (time.monotonic() - revoked_at)))
            with pytest.raises(Exception) as refused:
                await c.call_tool("search", {"query": "draw"})
            assert "revoked" in repr(refused.value), repr(refused.value)

            after = stroke("victim")
            victim.doc.add_strokes([after])
            marker = stroke("watcher")
            watcher.doc.add_strokes([marker])
            checker = await CanvasClient.connect(a.ws, room, a.token(room, "view"), name="checker")
            try:
                await checker.wait_for(lambda d: d.stroke(marker.id), 5)
                assert checker.doc.stroke(before.id) is not None and checker.doc.stroke(after.id) is None
            finally:
                await checker.close()
    finally:
        await victim.close()
        await watcher.close()


async def test_an_expired_links_websocket_is_cut_within_2s_in_a_cluster(cluster):
    a = cluster.node()
    room = "brief"
    link = a.access().mint(room, "edit", expires=timedelta(seconds=3))
    expires = a.access().verify(link, room).expires
    assert expires is not None
    victim = await CanvasClient.connect(a.ws, room, link, name="victim")
    try:
        await victim.wait_for(lambda: victim.error is not None, CUT_S + 5)
        took = time.time() - expires.timestamp()
        assert took < CUT_S, f"the websocket was cut {took:.2f} s after its link expired"
        assert (victim.error.code, victim.error.reason) == (4401, EXPIRED)
    finally:
        await victim.close()


def inhabit(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "inhabit", *args], cwd=ROOT, check=True, capture_output=True, timeout=30)


def _names(c: CanvasClient) -> set[str]:
    return {s.get("user", {}).get("name") for s in c.awareness().values()}
