"""The agent's placement in cluster mode: one agent per room across the nodes.

Why apart from `agent.hosting.cluster`: that module is the transport (leases, the rooms' agent
queues in Redis, takeover of rooms whose node died); this one decides, for the plugin, what a
prompt, an undo or a change to a behaviour does on this node: take the room's lease if it is
free and do it here, or hand it to the node holding the lease. Only that node hosts the room's
peer and behaviours; any node answers the reading routes from the shared records.

Claims: while a room's lease was just taken for a peer still starting or a change still being
made, it is not let go (`let_go`), even though no peer is resident yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Iterator

from agent.behaviours.routes import BehaviourChange, Outcome
from agent.contract.canvas import Grant
from agent.contract.events import Installer
from agent.hosting.cluster import AgentCluster
from agent.hosting.peer import AgentPeer
from agent.hosting.placement import AgentElsewhere, Rooms
from agent.limits.admission import QueueFull
from agent.runs.records import RunRecords
from agent.runs.store import AgentRun, RunStore
from common.cluster import Cluster
from common.http import ApiError

log = logging.getLogger("inhabit.agent")


class ClusterPlacement:
    """A room's agent lives on the node holding its lease; work elsewhere is forwarded to it.
    Implements `agent.hosting.placement.Placement` (for the plugin) and
    `agent.hosting.cluster.Tenant` (for the leases and queues)."""

    def __init__(self, cluster: Cluster, rooms: Rooms, runs: RunStore, records: RunRecords, *, queue: int) -> None:
        self.rooms = rooms
        self.records = records
        self.queue = queue
        """Prompts a room's agent queues: a prompt for a full queue elsewhere is refused here."""
        self.leases = AgentCluster(cluster, runs, records, self)
        self._claims: Counter[str] = Counter()

    async def start(self) -> None:
        await self.leases.start()

    async def close(self) -> None:
        await self.leases.close()

    def gauges(self) -> dict[str, tuple[float, str]]:
        return self.leases.gauges()

    # Placement: work from the routes ----------------------------------------------------------

    async def submit(self, room: str, prompt: str, *, author: str, grant: Grant, installer: Installer | None = None) -> AgentRun:
        target = await self._here_or_holder(room)
        if not isinstance(target, str):
            return target.submit(prompt, author=author, grant=grant, source="http", installer=installer)
        # the holder's queue, as the records show it (one running, the rest waiting): a full
        # one refuses here, with 429, rather than as a failed run there
        if len(await asyncio.to_thread(self.records.unfinished, room)) > self.queue:
            raise QueueFull
        run = AgentRun(room=room, prompt=prompt, author=author, grant=grant, source="http")
        await self.leases.forward(room, run, target, installer)
        return run

    async def undo(self, room: str, run: AgentRun) -> list[str] | None:
        target = await self._here_or_holder(room)
        if isinstance(target, str):
            return await self.leases.undo_at(room, run.id)
        self.rooms.runs.adopt(run)
        return target.undo(run.id)

    async def dispatch(self, change: BehaviourChange) -> Outcome:
        with self._claim(change.room):
            holder = await self.leases.place(change.room)
            if holder is None:
                await self.rooms.store.adopt(change.room)
                out = await self.rooms.perform(change)
        if holder is None:
            async with self.rooms.admit:
                await self.let_go(change.room)
            return out
        answer = await self.leases.ask_holder(change.room, change.model_dump_json().encode())
        if answer is None:
            return Outcome.of(ApiError(error=f"the node running this room's agent ({holder}) did not answer; try again shortly"), 503)
        return Outcome.model_validate_json(answer)

    async def resident(self, room: str) -> AgentPeer:
        target = await self._here_or_holder(room)
        if isinstance(target, str):
            await self.leases.nudge(room)  # people arrived here: the holder's peer comes for them
            raise AgentElsewhere(f"the agent of room {room} runs on node {target}")
        return target

    async def let_go(self, room: str) -> None:
        """No peer here: give the room's agent lease back, unless the room has a schedule (this
        node fires it, peer or not) or a claim."""
        store = self.rooms.store
        if self.rooms.has_peer(room) or room in self._claims or store.scheduled(room):
            return
        await store.drop(room)  # written before another node can load it
        await self.leases.release(room)

    async def let_go_idle(self) -> None:
        for room in list(self.leases.held):
            await self.let_go(room)  # held for a change or a schedule that is gone

    async def _here_or_holder(self, room: str) -> AgentPeer | str:
        """This node's peer for the room (taking the room's agent lease if it is free), or the id
        of the node that has it."""
        with self._claim(room):
            holder = await self.leases.place(room)
            if holder is not None:
                return holder
            fresh = not self.rooms.has_peer(room)
            try:
                peer = await self.rooms.peer(room)
            except BaseException:
                await self.leases.release(room, resident=True)
                raise
            if fresh:
                await self.leases.recover(room, peer)
            return peer

    @contextlib.contextmanager
    def _claim(self, room: str) -> Iterator[None]:
        """While this is held, the room's lease is not let go (see the module docstring)."""
        self._claims[room] += 1
        try:
            yield
        finally:
            self._claims[room] -= 1
            if not self._claims[room]:
                del self._claims[room]

    # Tenant: what the leases and queues ask of this node ---------------------------------------

    async def peer_for(self, room: str) -> AgentPeer:
        return await self.rooms.peer(room)

    async def take_over(self, room: str) -> None:
        """This node took the agent lease of a room nobody holds (its node died, or it has a
        schedule): its behaviours are ours; its peer starts if runs wait or behaviours react to
        people (it leaves again if nobody is there)."""
        try:
            with self._claim(room):
                await self.rooms.store.adopt(room)
                waiting = await asyncio.to_thread(self.records.unfinished, room)
                peer = await self.rooms.peer(room) if waiting or self.rooms.reacts(room) else None
            if peer is None:
                return await self.let_go(room)  # a schedule: fired when due; else nothing to do here
        except Exception as exc:
            log.warning("room %s: cannot take its agent over here (%s); another node will", room, type(exc).__name__)
            await self.rooms.store.drop(room)
            await self.leases.release(room, resident=True)
            return
        await self.leases.recover(room, peer)

    async def lost(self, room: str) -> None:
        await self.rooms.evict(room)

    async def scheduled(self) -> list[str]:
        return await self.rooms.store.scheduled_rooms()

    async def handle(self, room: str, request: bytes) -> bytes:
        """A change another node forwarded to us, the holder."""
        change = BehaviourChange.model_validate_json(request)
        await self.rooms.store.adopt(change.room)
        return (await self.rooms.perform(change)).model_dump_json().encode()

    async def arrive(self, room: str) -> None:
        await self.rooms.arrive(room)
