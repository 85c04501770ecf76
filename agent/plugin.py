"""Server plugin: one hosted agent peer per room, for prompts (`agent.runs.routes`) and
behaviours (`agent.behaviours.routes`, `agent.hosting.residency`).

Why hosted peers connect over the websocket (to the server's own URL, with an internally
minted edit token) instead of touching room objects: the agent stays a peer like any other,
so this plugin depends only on the `Host` it is handed at start-up (settings and token
authority), the shared token lookup (`common.access`) and the headless client
(`wire.client`), never on room internals.

What one token can cost (all bounds from `PromptLimits`): prompts per minute per token and per
room (`agent.runs.routes`), a bounded queue per room with edit grants first, and a cap on
resident peers (the idlest leaves to make room; 503 when all are busy). Each room runs one prompt at a time, so at most `peers`
runs are in flight and one room never holds more than one of the sandbox's threads.

In cluster mode (`Host.cluster`), run records and behaviours live in PostgreSQL and
`agent.hosting.cluster` keeps one agent per room across the nodes (a lease): a prompt, an undo or a
change to a behaviour reaching another node is handed to the node holding the room's agent,
which alone hosts the room's behaviours, and any node answers the reading routes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

from starlette.routing import BaseRoute

from agent.behaviours.model import BehaviourLimits
from agent.behaviours.pg_records import PgBehaviourDB
from agent.behaviours.records import BehaviourDB, BehaviourRecords
from agent.behaviours.routes import BehaviourChange, BehaviourRoutes, Outcome
from agent.behaviours.scheduler import Hosting
from agent.behaviours.store import BehaviourStore
from agent.contract.canvas import Grant
from agent.contract.codemode import CodeMode
from agent.contract.events import Installer
from agent.hosting.cluster import AgentCluster, AgentElsewhere
from agent.hosting.peer import AgentPeer, addressed
from agent.hosting.residency import Residency
from agent.limits.admission import PeersFull, PromptLimits, QueueFull
from agent.limits.shared import SharedBuckets
from agent.runs.loop import ModelSettings, model_client
from agent.runs.pg_records import PgRunDB
from agent.runs.records import RunDB
from agent.runs.routes import RunRoutes
from agent.runs.store import AgentRun, RunStore
from canvas import now_ms
from common.http import ApiError

log = logging.getLogger("inhabit.agent")

RUNS_DB = "runs.sqlite3"
BEHAVIOURS_DB = "behaviours.sqlite3"
START_TIMEOUT_S = 10.0


class AgentPlugin:
    """The agent as a `server.plugin.Plugin`: prompt and run routes, one hosted peer per room."""

    def __init__(self, *, model: ModelSettings | None = None, idle_s: float = 300.0, name: str = "agent",
                 limits: PromptLimits | None = None, behaviours: BehaviourLimits | None = None) -> None:
        self.name = name
        self.model = model or ModelSettings()
        self.idle_s = idle_s
        """A hosted peer leaves its room after this long without prompts, so the room can unload."""
        self.limits = limits or PromptLimits()
        self.runs = RunStore()
        self.peers: dict[str, AgentPeer] = {}
        self._admit = asyncio.Lock()  # peers start and leave one at a time, so the cap cannot race
        self._code_mode = CodeMode()
        self._reaper: asyncio.Task[None] | None = None
        self._host: Any = None
        self._model_client: Any = None  # one Messages API client for every room's peer
        self._claims: Counter[str] = Counter()  # cluster mode: rooms whose lease was just taken for something under way
        self.cluster: AgentCluster | None = None
        self.behaviour_limits = behaviours or BehaviourLimits()
        self.hosting: Hosting | None = None  # once started: the behaviours, shared by every room's peer
        self.residency: Residency | None = None
        self._clock: asyncio.Task[None] | None = None
        self._run_routes = RunRoutes(self.limits, lambda: self.runs, self._submit, self._undo)
        self._behaviour_routes = BehaviourRoutes(self._hosting, self._resident, self._dispatch)
        self._routes: list[BaseRoute] = [*self._run_routes.routes, *self._behaviour_routes.routes]

    # the Plugin interface ----------------------------------------------------------------

    @property
    def routes(self) -> Sequence[BaseRoute]:
        return self._routes

    async def startup(self, host: Any) -> None:
        """`host` is a `server.plugin.Host` (typed loosely: the agent does not import the server)."""
        self._host = host
        try:  # off the event loop: importing the SDK would stall every room for a second or more
            self._model_client = await asyncio.to_thread(model_client, self.model)
        except Exception as exc:  # made again (and its error reported) by the first run
            log.warning("the model client cannot be made yet: %s", exc)
        if host.cluster is not None:  # the records in PostgreSQL; one peer per room across the nodes
            records = await asyncio.to_thread(PgRunDB, host.cluster.pool, self.runs.per_room)
            self.runs = RunStore(self.runs.per_room, db=records)
            bdb: BehaviourRecords = await asyncio.to_thread(PgBehaviourDB, host.cluster.pool, self.behaviour_limits.firings_kept)
        else:
            db = await asyncio.to_thread(RunDB, host.settings.data / RUNS_DB, self.runs.per_room)
            self.runs = RunStore(self.runs.per_room, db=db)  # run records survive restarts
            bdb = await asyncio.to_thread(BehaviourDB, host.settings.data / BEHAVIOURS_DB, self.behaviour_limits.firings_kept)
        store = await asyncio.to_thread(BehaviourStore, bdb)
        self.hosting = Hosting(store=store, sandbox=self._code_mode.sandbox, limits=self.behaviour_limits, grant_problem=self._grant_problem)
        self.residency = Residency(self.hosting, self.peers, self._resident, self._leave_now)
        if host.cluster is not None:
            self.cluster = AgentCluster(host.cluster, self.runs, records, peer_for=self.peer, take_over=self._take_over, lost=self._lost,
                                        scheduled=store.scheduled_rooms, handle=self._handle, arrive=self.residency.arrive)
            await self.cluster.start()
            self._run_routes.shared = SharedBuckets(host.cluster)
        host.watch_rooms(self.residency.occupancy)
        self._reaper = asyncio.create_task(self._reap())
        self._clock = asyncio.create_task(self.residency.run())

    async def shutdown(self) -> None:
        for task in (self._reaper, self._clock):
            if task is not None:
                task.cancel()
        if self.residency is not None:
            await self.residency.close()
        peers = list(self.peers.values())
        self.peers.clear()
        await asyncio.gather(*(p.close() for p in peers), return_exceptions=True)
        self.runs.close()  # writes what is pending; blocking, but only once at shutdown
        if self.hosting is not None:
            self.hosting.store.close()
        if self.cluster is not None:  # after the records are written: another node takes the rooms over
            await self.cluster.close()
        self._code_mode.close()

    def gauges(self) -> dict[str, tuple[float, str]]:
        out = {
            "agent_peers": (len(self.peers), "Hosted agent peers resident in rooms."),
            "agent_rate_keys": (len(self._run_routes.per_token) + len(self._run_routes.per_room), "Prompt rate-limit buckets held in memory."),
            **(self.cluster.gauges() if self.cluster is not None else {}),
        }
        if self.hosting is not None:
            m = self.hosting.metrics
            out.update({
                "behaviours": (len(self.hosting.store), "Behaviours stored (every status)."),
                "behaviours_active": (sum(1 for _ in self.hosting.store.active()), "Active behaviours."),
                "behaviour_firings_total": (m.firings, "Behaviour firings run."),
                "behaviour_failures_total": (m.failures, "Behaviour firings that failed (nothing written)."),
                "behaviour_firing_seconds_total": (m.seconds, "Seconds from event to commit, summed over firings."),
                "behaviour_firing_seconds_p50": (m.quantile(0.5), "Median seconds from event to commit (last 1,000 firings)."),
                "behaviour_firing_seconds_p99": (m.quantile(0.99), "99th percentile seconds from event to commit (last 1,000 firings)."),
            })
        return out

    def _hosting(self) -> Hosting:
        assert self.hosting is not None, "the plugin has not started"
        return self.hosting

    def _grant_problem(self, installer: Installer) -> str | None:
        """Why a behaviour installed by `installer` may not act now, or None."""
        if self._host.settings.open:
            return None
        if installer.id in self._host.access.revoked:
            return "the link that installed it was revoked"
        if installer.expires is not None and installer.expires <= now_ms():
            return "the link that installed it expired"
        return None

    # hosted peers ------------------------------------------------------------------------

    async def _reap(self) -> None:
        while True:
            await asyncio.sleep(min(30.0, self.idle_s / 2))
            async with self._admit:
                for room, peer in list(self.peers.items()):
                    if peer.idle_for() > self.idle_s and not self._needed(room):
                        await self._leave(room)
                for room in list(self.cluster.held if self.cluster is not None else ()):
                    await self._let_go(room)  # held for a change or a schedule that is gone

    async def _leave(self, room: str) -> None:
        """The room's peer leaves (hold `_admit`); its run records stay in the database."""
        peer = self.peers.pop(room, None)
        if peer is not None:
            await peer.close()
            self.runs.forget(room)
            await self._let_go(room)

    async def _let_go(self, room: str) -> None:
        """Cluster mode, no peer here: give the room's agent lease back, unless the room has a
        schedule (this node fires it, peer or not)."""
        store = self._hosting().store
        if self.cluster is None or room in self.peers or room in self._claims or store.scheduled(room):
            return
        await store.drop(room)  # written before another node can load it
        await self.cluster.release(room)

    async def _lost(self, room: str) -> None:
        """Cluster mode: another node holds this room's agent now; ours leaves."""
        async with self._admit:
            peer = self.peers.pop(room, None)
            if peer is not None:
                await peer.close()
                self.runs.forget(room)
            await self._hosting().store.drop(room)

    async def _take_over(self, room: str) -> None:
        """Cluster mode: this node took the agent lease of a room nobody holds (its node died,
        or it has a schedule): its behaviours are ours; its peer starts if runs wait or
        behaviours react to people (it leaves again if nobody is there)."""
        assert self.cluster is not None and self.residency is not None
        try:
            with self._claim(room):
                await self._hosting().store.adopt(room)
                waiting = await asyncio.to_thread(self.cluster.records.unfinished, room)
                peer = await self.peer(room) if waiting or self.residency.reacts(room) else None
            if peer is None:
                return await self._let_go(room)  # a schedule: fired when due; else nothing to do here
        except Exception as exc:
            log.warning("room %s: cannot take its agent over here (%s); another node will", room, type(exc).__name__)
            await self._hosting().store.drop(room)
            await self.cluster.release(room, resident=True)
            return
        await self.cluster.recover(room, peer)

    async def _dispatch(self, change: BehaviourChange) -> Outcome:
        """A change to a behaviour, carried out where the room's behaviours are held."""
        routes = self._behaviour_routes
        if self.cluster is None:
            return await routes.perform(change)
        with self._claim(change.room):
            holder = await self.cluster.place(change.room)
            if holder is None:
                await self._hosting().store.adopt(change.room)
                out = await routes.perform(change)
        if holder is None:
            async with self._admit:
                await self._let_go(change.room)
            return out
        answer = await self.cluster.ask_holder(change.room, change.model_dump_json().encode())
        if answer is None:
            return Outcome.of(ApiError(error=f"the node running this room's agent ({holder}) did not answer; try again shortly"), 503)
        return Outcome.model_validate_json(answer)

    async def _handle(self, room: str, request: bytes) -> bytes:
        """Cluster mode: a change another node forwarded to us, the holder."""
        change = BehaviourChange.model_validate_json(request)
        await self._hosting().store.adopt(change.room)
        return (await self._behaviour_routes.perform(change)).model_dump_json().encode()

    async def _resident(self, room: str) -> AgentPeer:
        """The room's peer on this node, for its behaviours (residency, behaviour routes). In
        cluster mode only the node holding the room's agent lease has one: elsewhere this
        raises AgentElsewhere, so a room never gets a second agent for its behaviours."""
        if self.cluster is None:
            return await self.peer(room)
        target = await self._here_or_holder(room)
        if isinstance(target, str):
            await self.cluster.nudge(room)  # people arrived here: the holder's peer comes for them
            raise AgentElsewhere(f"the agent of room {room} runs on node {target}")
        return target

    async def _here_or_holder(self, room: str) -> AgentPeer | str:
        """Cluster mode: this node's peer for the room (taking the room's agent lease if it is
        free), or the id of the node that has it."""
        assert self.cluster is not None
        with self._claim(room):
            holder = await self.cluster.place(room)
            if holder is not None:
                return holder
            fresh = room not in self.peers
            try:
                peer = await self.peer(room)
            except BaseException:
                await self.cluster.release(room, resident=True)
                raise
            if fresh:
                await self.cluster.recover(room, peer)
            return peer

    @contextlib.contextmanager
    def _claim(self, room: str) -> Iterator[None]:
        """Cluster mode: while this is held, the room's lease is not let go (`_let_go`): it was
        just taken for a peer still starting, or for a change still being made."""
        self._claims[room] += 1
        try:
            yield
        finally:
            self._claims[room] -= 1
            if not self._claims[room]:
                del self._claims[room]

    def release(self, room: str) -> None:
        """Others sharing the run store (MCP sessions, `agent/mcp/endpoint.py`) are done with `room`: its
        records leave memory unless our peer is resident there (they are read back when needed)."""
        if room not in self.peers:
            self.runs.forget(room)

    async def _leave_now(self, room: str) -> None:
        async with self._admit:
            await self._leave(room)

    def _needed(self, room: str) -> bool:
        """The peer hosts behaviours that react to the people in its room: it stays."""
        return self.residency is not None and self.residency.needed(room)

    async def _make_room(self) -> None:
        """Below the peer cap after this (hold `_admit`): the idlest peer leaves; PeersFull
        if every peer is working, has prompts waiting, or hosts behaviours people are using."""
        while len(self.peers) >= self.limits.peers:
            idle = [(peer.idle_for(), room) for room, peer in self.peers.items() if peer.idle_for() > 0 and not self._needed(room)]
            if not idle:
                raise PeersFull
            await self._leave(max(idle)[1])

    async def peer(self, room: str) -> AgentPeer:
        """The room's hosted agent, started (and connected over the websocket) on first use."""
        peer = self.peers.get(room)
        if peer is not None:
            return peer
        async with self._admit:
            peer = self.peers.get(room)
            if peer is None:
                await self._make_room()
                await self._hosting().store.adopt(room)  # cluster mode: its behaviours are ours while we hold it
                settings = self._host.settings
                token = None if settings.open else self._host.access.mint(room, "edit")
                peer = AgentPeer(settings.internal_ws, room, token=token, name=self.name, runs=self.runs,
                                 code_mode=self._code_mode, settings=self.model, queue=self.limits.queue, hosting=self.hosting,
                                 model_client=self._model_client)
                self.peers[room] = await asyncio.wait_for(peer.start(), START_TIMEOUT_S)
            return peer

    async def _submit(self, room: str, text: str, *, author: str, grant: Grant, installer: Installer | None = None) -> AgentRun:
        prompt = addressed(text, self.name) or text.strip()
        if self.cluster is None:
            peer = await self.peer(room)
            return peer.submit(prompt, author=author, grant=grant, source="http", installer=installer)
        target = await self._here_or_holder(room)
        if isinstance(target, str):
            # the holder's queue, as the records show it (one running, the rest waiting): a full
            # one refuses here, with 429, rather than as a failed run there
            if len(await asyncio.to_thread(self.cluster.records.unfinished, room)) > self.limits.queue:
                raise QueueFull
            run = AgentRun(room=room, prompt=prompt, author=author, grant=grant, source="http")
            await self.cluster.forward(room, run, target, installer)
            return run
        return target.submit(prompt, author=author, grant=grant, source="http", installer=installer)

    async def _undo(self, room: str, run: AgentRun) -> list[str] | None:
        """The strokes erased by undoing `run`, wherever the room's agent is (None: no answer)."""
        if self.cluster is None:
            return (await self.peer(room)).undo(run.id)
        target = await self._here_or_holder(room)
        if isinstance(target, str):
            return await self.cluster.undo_at(room, run.id)
        self.runs.adopt(run)
        return target.undo(run.id)
