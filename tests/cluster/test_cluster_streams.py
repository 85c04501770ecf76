"""Cluster mode's Redis and PostgreSQL pieces in process, against a real redis-server (and the
session's PostgreSQL): appends and reads, the stream bound, replay, trim and its mark, the rooms
due for compaction, heartbeats, leases, and loading a room while a compaction trims under it."""

from __future__ import annotations

import asyncio
import time

import pytest
from pycrdt import Doc, Map
from redis.asyncio import Redis

from common.cluster import Cluster, Lease
from common.postgres import open_pool
from server.cluster.loading import load_room
from server.cluster.snapshots import Snapshots
from server.cluster.streams import RoomStreams, StreamFull, Trimmed, sid
from server.store import Row, Snapshot
from wire import protocol as p

pytestmark = pytest.mark.timeout(60)


def streams(redis_server, node: str, **kw) -> RoomStreams:
    kw = {"window_s": 0.0, "max_entries": 1000, **kw}
    return RoomStreams(Redis.from_url(redis_server.url, protocol=3), Redis.from_url(redis_server.url, protocol=3), node, **kw)


def update(doc: Doc, **items: object) -> bytes:
    got: list[bytes] = []
    sub = doc.observe(lambda e: got.append(e.update))
    with doc.transaction():
        m = doc.get("m", type=Map)
        for k, v in items.items():
            m[k] = v
    doc.unobserve(sub)
    return got[0]


async def test_entries_carry_the_message_its_node_and_the_presence_identity(redis_server):
    n1, n2 = streams(redis_server, "n1"), streams(redis_server, "n2")
    msg = p.sync_update(update(Doc(), a=1))
    presence = p.awareness_message(p.encode_awareness([(7, 1, '{"user":{}}')]))
    assert await n1.append({"r": [(msg, ""), (presence, "alice")]}) == {"r": 2}
    await n2.start_waking()
    (room, got), = await n2.read({"r": "0-0"}, 100)
    assert room == "r" and [(e.node, e.message, e.identity) for e in got] == [(b"n1", msg, ""), (b"n1", presence, "alice")]
    assert sid(got[1].id) > sid(got[0].id)
    assert await n2.read({"r": got[1].id}, 50) == []  # nothing new: the read waited, then returned empty


async def test_a_room_at_its_stream_bound_refuses_appends_the_others_go_on(redis_server):
    n1 = streams(redis_server, "n1", max_entries=3)
    msg = p.sync_update(update(Doc(), a=1))
    assert await n1.append({"full": [(msg, "")] * 3}) == {"full": 3}
    assert isinstance((await n1.append({"full": [(msg, "")] * 2}))["full"], StreamFull)  # a batch past the bound: none of it
    result = await n1.append({"full": [(msg, "")], "other": [(msg, "")]})
    assert isinstance(result["full"], StreamFull) and result["other"] == 1
    assert await n1.redis.xlen("inhabit:{full}:s") == 3  # nothing of the refused call was appended


async def test_trim_keeps_what_no_snapshot_covers_raises_the_mark_and_replay_notices(redis_server):
    n1 = streams(redis_server, "n1")
    msgs = [p.sync_update(update(Doc(), k=i)) for i in range(5)]
    for m in msgs:
        await n1.append({"r": [(m, "")]})
        await asyncio.sleep(0.002)  # distinct milliseconds: the trim is by time
    ids = [e.id for e in await n1.replay("r", "0-0")]
    assert len(ids) == 5 and await n1.due(0) == ["r"]
    await n1.trim("r", ids[2])  # a snapshot covers the first three
    assert [e.id for e in await n1.replay("r", ids[2])] == ids[3:]
    with pytest.raises(Trimmed):  # an older snapshot's reader must load the newer one
        await n1.replay("r", ids[0])
    assert (await n1.marks(["r"]))[0] == f"{sid(ids[2])[0]}-0"
    assert await n1.due(0) == ["r"]  # entries after the snapshot: still due
    await n1.trim("r", ids[4])
    assert await n1.due(0) == []  # everything covered
    assert await n1.due(3600) == []


async def test_heartbeats_tell_who_is_alive(redis_server):
    n1, n2 = streams(redis_server, "n1"), streams(redis_server, "n2")
    await n1.heartbeat(10)
    assert await n2.heartbeat(10) == {"n1", "n2"}
    await asyncio.sleep(0.3)
    assert await n2.heartbeat(0.2) == {"n2"}  # n1 has not beaten for longer than that


@pytest.mark.serial  # timing-sensitive: runs alone under xdist
async def test_a_lease_has_one_holder_renewed_and_released_only_by_it(redis_server):
    def lease(node: str) -> Lease:
        return Lease(Cluster(node=node, redis=Redis.from_url(redis_server.url), pool=None, lease_s=0.5))  # type: ignore[arg-type]

    a, b = lease("a"), lease("b")
    assert await a.acquire("k") and not await b.acquire("k")
    assert await a.holder("k") == "a" and not await b.renew("k") and await a.renew("k")
    await b.release("k")
    assert await a.holder("k") == "a"
    async with a.hold("k2") as held:
        assert held
        await asyncio.sleep(0.7)  # longer than the lease: renewed meanwhile
        assert await b.holder("k2") == "a"
        async with b.hold("k2") as other:
            assert not other
    assert await b.acquire("k2")  # released at the end of the block
    await asyncio.sleep(0.6)
    assert await b.acquire("k")  # a's first lease expired: its holder is taken for dead


async def test_loading_a_room_while_a_compaction_trims_reads_the_newer_snapshot(redis_server, postgres):
    pool = open_pool(postgres.create_database(), 2)
    store = Snapshots(pool)
    n1 = streams(redis_server, "n1")
    doc = Doc()
    for i in range(6):
        await n1.append({"r": [(p.sync_update(update(doc, **{f"k{i}": i})), "")]})
        await asyncio.sleep(0.002)
    ids = [e.id for e in await n1.replay("r", "0-0")]
    early = Doc()
    for e in (await n1.replay("r", "0-0"))[:2]:
        early.apply_update(p.decode_sync(e.message)[1])
    store.save("r", Snapshot(early.get_update(), 0), ids[1])
    old = store.load("r")  # what a slow loader read before the compaction below
    full = Doc()
    for e in (await n1.replay("r", "0-0"))[:5]:
        full.apply_update(p.decode_sync(e.message)[1])
    store.save("r", Snapshot(full.get_update(), 0), ids[4])
    await n1.trim("r", ids[4])

    class Slow(Snapshots):
        """The loader read the older snapshot once, before the compaction went by."""

        def __init__(self) -> None:
            self.pool, self.versions_kept, self.first = pool, 0, True

        def load(self, room: str) -> tuple[Row | None, str]:
            if self.first:
                self.first = False
                return old
            return store.load(room)

    loaded = await load_room(Slow(), n1, "r")
    assert dict(loaded.doc.get("m", type=Map)) == {f"k{i}": float(i) for i in range(6)}
    assert loaded.position == ids[5]
    pool.close()


def test_stream_ids_compare_as_numbers():
    assert sid("1700000000000-10") > sid("1700000000000-9") and sid("999-0") < sid("1000-0")
    assert sid(str(int(time.time() * 1000))) > sid("0-0")
