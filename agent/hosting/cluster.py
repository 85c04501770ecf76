"""The agent in cluster mode: exactly one agent peer per room across the cluster, whichever node
a prompt reaches.

- A lease per room in Redis (`inhabit:{room}:agent` = the holder's node id, SET NX PX): the node
  holding it runs the room's peer, renews it while the peer is resident and releases it when
  the peer leaves. A node that dies loses its leases when they expire.
- Requests reach the holder through the room's agent queue (a Redis stream,
  `inhabit:{room}:agentq`): the node that took an HTTP prompt records the run in PostgreSQL
  first (so every node can show it at once), then appends `{run}`; undo appends
  `{undo, reply}` and waits for the answer on the `reply` list (BLPOP). The holder reads the
  queues of all the rooms it holds in one blocking read.
- Takeover: rooms with an agent are listed in `inhabit:agents`, and rooms with a behaviour on a
  schedule are listed by PostgreSQL. Every node looks, every half lease, for such a room whose
  lease is gone, takes it and takes over the room's behaviours and unfinished runs: queued
  runs run; ones that were running when their node died are marked interrupted (as a restart
  does on one node: a half-run prompt is not run twice).
- The holder also hosts the room's behaviours: it alone fires them (schedules fire once, not
  once per node), and other nodes hand it what people ask of them (pause, resume, remove,
  undo a firing: `{op, reply}`) and tell it when people arrive (`{arrive}`: its peer comes for
  behaviours that react to them). It keeps the lease while the room has a schedule, with or
  without a peer there.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections import OrderedDict
from typing import Protocol, cast

from redis.exceptions import RedisError
from redis.typing import EncodableT, FieldT

from agent.contract.events import Installer
from agent.limits.admission import QueueFull
from agent.runs.records import RunRecords
from agent.runs.store import INTERRUPTED, AgentRun, RunStore
from canvas import now_ms
from common.cluster import PREFIX, Cluster, Lease, forever, text
from common.sql import SqlError

log = logging.getLogger("inhabit.agent")

AGENTS = PREFIX + "agents"
QUEUE_LEN = 1000
"""Requests kept per room's agent queue (a bound; the holder reads them within a moment)."""
READ_BLOCK_MS = 500
UNDO_WAIT_S = 10.0
SEEN = 512

QueueReply = list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]]
"""An XREAD of agent queues as our clients (RESP2, bytes) answer it: [[stream, [(id, {field: value})]]]."""


def lease_key(room: str) -> str:
    return f"{PREFIX}{{{room}}}:agent"


def queue_key(room: str) -> str:
    return f"{PREFIX}{{{room}}}:agentq"


class Peer(Protocol):
    """What the cluster side needs of a room's peer (`agent.hosting.peer.AgentPeer`)."""

    def enqueue(self, run: AgentRun, *, installer: Installer | None = None) -> AgentRun: ...

    def refuse(self, run: AgentRun, reason: str) -> None: ...

    def undo(self, run_id: str) -> list[str]: ...


class Tenant(Protocol):
    """What the leases and queues ask of this node when a room's agent comes, goes or is asked
    something (`agent.hosting.cluster_placement.ClusterPlacement`)."""

    async def peer_for(self, room: str) -> Peer:
        """The room's peer here (this node holds the room's agent)."""
        ...

    async def take_over(self, room: str) -> None:
        """This node just took the lease of a room nobody held."""
        ...

    async def lost(self, room: str) -> None:
        """Another node holds the room's agent now."""
        ...

    async def scheduled(self) -> list[str]:
        """Rooms with a behaviour on a schedule (they need an agent somewhere)."""
        ...

    async def handle(self, room: str, request: bytes) -> bytes:
        """The holder's answer to a request another node forwarded."""
        ...

    async def arrive(self, room: str) -> None:
        """People arrived in the room on another node."""
        ...


class AgentCluster:
    """Leases, queues and takeover for the agent's cluster placement (see the module docstring)."""

    def __init__(self, cluster: Cluster, runs: RunStore, records: RunRecords, tenant: Tenant) -> None:
        self.redis = cluster.redis
        self.node = cluster.node
        self.lease = Lease(cluster)
        self.runs = runs
        self.records = records
        self.tenant = tenant
        self.held: dict[str, str] = {}  # room -> the last queue id read
        self._seen: OrderedDict[str, None] = OrderedDict()  # run ids taken, so a queued run never runs twice
        self._tasks: list[asyncio.Task[None]] = []
        self.forwarded = 0

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(forever(f)) for f in (self._read_forever, self._renew_forever, self._watch_forever)]

    async def close(self) -> None:
        """Stop; leases held are released, so another node takes the rooms over at once (and
        their unfinished runs with them)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for room in list(self.held):
            try:
                await self.lease.release(lease_key(room))
            except (RedisError, OSError):
                pass
        self.held.clear()

    # where a room's agent is

    async def place(self, room: str) -> str | None:
        """None if this node has the room's agent (taking the lease if it is free: start the
        peer then), else the id of the node that has it."""
        for _ in range(3):
            if room in self.held:
                return None
            if await self.lease.acquire(lease_key(room)):
                await self._hold(room)
                return None
            holder = await self.lease.holder(lease_key(room))
            if holder is not None and holder != self.node:
                return holder
        raise RuntimeError(f"the agent lease of room {room} changes hands too fast")

    async def _hold(self, room: str) -> None:
        last = await self.redis.xrevrange(queue_key(room), "+", "-", count=1)
        self.held[room] = text(cast(bytes, last[0][0])) if last else "0-0"  # before reading unfinished runs: nothing falls between
        await self.redis.sadd(AGENTS, room)

    async def release(self, room: str, resident: bool = False) -> None:
        """The room's peer left: give the lease back (and, unless runs may wait, the listing)."""
        self.held.pop(room, None)
        try:
            await self.lease.release(lease_key(room))
            if not resident:
                await self.redis.srem(AGENTS, room)
        except (RedisError, OSError) as exc:
            log.warning("room %s: cannot release the agent lease (%s); it expires by itself", room, exc)

    async def recover(self, room: str, peer: Peer) -> None:
        """A new tenure: run the room's queued runs, mark the ones cut short as interrupted."""
        for data in await asyncio.to_thread(self.records.unfinished, room):
            run = AgentRun.model_validate_json(data)
            if not self._take(run.id):
                continue
            run = self.runs.adopt(run)
            if run.status == "running":
                run.status, run.reply, run.finished = "failed", INTERRUPTED, now_ms()
                run.errors.append(INTERRUPTED)
                self.runs.save(run)
            else:
                self._enqueue(peer, run)

    # requests for the holder

    async def forward(self, room: str, run: AgentRun, holder: str, installer: Installer | None = None) -> None:
        """Hand a prompt's run to the node holding the room's agent (recorded first), with the
        edit link that asked (what may install behaviours; not part of the record)."""
        await self.runs.save_now(run)
        fields: dict[FieldT, EncodableT] = {"run": run.model_dump_json(), "installer": installer.model_dump_json() if installer else ""}
        await self.redis.xadd(queue_key(room), fields, maxlen=QUEUE_LEN, approximate=True)
        self.forwarded += 1
        if await self.lease.holder(lease_key(room)) != holder:  # it let go meanwhile: whoever takes over runs it
            log.info("room %s: the agent moved while a prompt was forwarded; it runs from the records", room)

    async def undo_at(self, room: str, run_id: str) -> list[str] | None:
        """Undo a run on the holder; the stroke ids it erased (None: no answer in time)."""
        got = await self._call(room, {"undo": run_id})
        return None if got is None else list(json.loads(got))

    async def ask_holder(self, room: str, request: bytes) -> bytes | None:
        """The holder's `handle` of `request` (None: no answer in time)."""
        return await self._call(room, {"op": request})

    async def nudge(self, room: str) -> None:
        """Tell the holder that people arrived here (its peer comes if behaviours react to them)."""
        await self.redis.xadd(queue_key(room), {"arrive": b"1"}, maxlen=QUEUE_LEN, approximate=True)

    async def _call(self, room: str, fields: dict[FieldT, EncodableT]) -> bytes | None:
        reply = f"{PREFIX}reply:{uuid.uuid4().hex}"
        await self.redis.xadd(queue_key(room), {**fields, "reply": reply}, maxlen=QUEUE_LEN, approximate=True)
        for _ in range(int(UNDO_WAIT_S)):  # one-second waits: within the client's socket timeout
            got = await self.redis.blpop([reply], timeout=1)
            if got is not None:
                return cast(bytes, got[1])  # our clients answer bytes
        return None

    async def _read_forever(self) -> None:
        while True:
            if not self.held:
                await asyncio.sleep(READ_BLOCK_MS / 1000)
                continue
            try:  # a room taken meanwhile is read from the next round on (at most READ_BLOCK_MS)
                reply = cast("QueueReply | None", await self.redis.xread({queue_key(r): at for r, at in self.held.items()}, count=100, block=READ_BLOCK_MS))
            except (RedisError, OSError) as exc:
                log.debug("agent queues: %s", exc)
                await asyncio.sleep(1)
                continue
            for key, entries in reply or ():
                room = key.decode()[len(PREFIX) + 1:-len("}:agentq")]
                for entry_id, fields in entries:
                    if room in self.held:
                        self.held[room] = entry_id.decode()
                        await self._request(room, fields)

    async def _request(self, room: str, fields: dict[bytes, bytes]) -> None:
        try:
            if b"run" in fields:
                run = AgentRun.model_validate_json(fields[b"run"])
                installer = Installer.model_validate_json(fields[b"installer"]) if fields.get(b"installer") else None
                if self._take(run.id):
                    self._enqueue(await self.tenant.peer_for(room), self.runs.add(run), installer)
            elif b"undo" in fields:
                run_id = fields[b"undo"].decode()
                undone = await self.runs.fetch(room, run_id)
                if undone is not None:
                    self.runs.adopt(undone)
                erased = (await self.tenant.peer_for(room)).undo(run_id) if undone is not None else []
                await self._reply(fields, json.dumps(erased).encode())
            elif b"op" in fields:
                await self._reply(fields, await self.tenant.handle(room, fields[b"op"]))
            elif b"arrive" in fields:
                await self.tenant.arrive(room)
        except Exception:
            log.exception("room %s: agent request failed", room)

    async def _reply(self, fields: dict[bytes, bytes], answer: bytes) -> None:
        reply = fields[b"reply"].decode()
        await self.redis.rpush(reply, answer)
        await self.redis.expire(reply, int(UNDO_WAIT_S) * 3)

    def _enqueue(self, peer: Peer, run: AgentRun, installer: Installer | None = None) -> None:
        try:
            peer.enqueue(run, installer=installer)
        except QueueFull:
            peer.refuse(run, "the agent's queue in this room was full; ask again shortly")

    def _take(self, run_id: str) -> bool:
        if run_id in self._seen:
            return False
        self._seen[run_id] = None
        while len(self._seen) > SEEN:
            self._seen.popitem(last=False)
        return True

    # leases: kept while resident, taken over from dead nodes

    async def _renew_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            began = loop.time()
            await asyncio.sleep(self.lease.ms / 3000)
            late = loop.time() - began - self.lease.ms / 3000
            if late > self.lease.ms / 3000 and self.held:  # the lease may lapse while we hold it: say why
                log.warning("agent leases renewed %.1f s late (this node's event loop was busy)", late)
            for room in list(self.held):
                try:
                    kept = await self.lease.renew(lease_key(room))
                except (RedisError, OSError):
                    continue  # Redis away: nobody can take it either; try again next round
                if not kept and room in self.held:
                    log.warning("room %s: lost the agent lease; its peer leaves this node", room)
                    self.held.pop(room, None)
                    await self.tenant.lost(room)

    async def _watch_forever(self) -> None:
        while True:
            await asyncio.sleep(self.lease.ms / 2000)
            try:
                rooms = {text(r) for r in await self.redis.smembers(AGENTS)} | set(await self.tenant.scheduled())
                for room in sorted(rooms):
                    if room not in self.held and not await self.redis.exists(lease_key(room)) and await self.lease.acquire(lease_key(room)):
                        log.info("room %s: nobody holds its agent (its node died, or it has a schedule); it comes here", room)
                        await self._hold(room)
                        await self.tenant.take_over(room)
            except (RedisError, OSError, SqlError) as exc:
                log.debug("agent takeover watch: %s", exc)
            except Exception:
                log.exception("agent takeover watch")

    def gauges(self) -> dict[str, tuple[float, str]]:
        return {"agent_leases": (len(self.held), "Rooms whose agent lease this node holds."),
                "agent_prompts_forwarded_total": (self.forwarded, "Prompts handed to the node holding their room's agent.")}

