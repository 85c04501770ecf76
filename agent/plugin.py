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
runs are in flight. The sandbox (`self.sandbox`) is the server's one pool of program threads,
shared with behaviours and MCP executes: rooms take turns, then links in a room, each within a cap
and a CPU budget per minute (`agent.sandbox.fair`, `AgentSettings.sandbox_*`).

Where a room's agent lives is the placement's (`agent.hosting.placement`), chosen once at
start-up from `Host.cluster`: everything here on one process, or in cluster mode one agent per
room across the nodes (`agent.hosting.cluster_placement`: a lease; a prompt, an undo or a change
to a behaviour reaching another node is handed to the node holding the room's agent, which alone
hosts the room's behaviours; any node answers the reading routes). In cluster mode the run
records and behaviours live in PostgreSQL. The plugin itself is the same in both modes: it
implements what the placement, the residency and the routes need of this node's peers
(`Rooms`, `residency.Peers`, the routes' `Agent`) and hands itself over whole.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from psycopg_pool import ConnectionPool
from starlette.routing import BaseRoute

from agent.behaviours.installs import InstallAnswer, InstallRequest, install_requested
from agent.behaviours.presses import Presses
from agent.behaviours.records import BehaviourRecords
from agent.behaviours.routes import BehaviourChange, BehaviourRoutes, Outcome
from agent.behaviours.scheduler import Hosting
from agent.behaviours.settings import BehaviourLimits
from agent.behaviours.store import BehaviourStore
from agent.contract.canvas import Grant
from agent.contract.codemode import CodeMode
from agent.contract.events import Installer
from agent.hosting.chat_prompts import addressed
from agent.hosting.cluster_placement import ClusterPlacement
from agent.hosting.peer import AgentPeer
from agent.hosting.placement import EmbeddedPlacement, Placement
from agent.hosting.residency import Residency
from agent.limits.admission import PeersFull, PromptLimits
from agent.limits.shared import SharedBuckets
from agent.runs.loop import ModelClient
from agent.runs.records import RunRecords
from agent.runs.routes import RunRoutes
from agent.runs.settings import AgentSettings
from agent.runs.store import AgentRun, RunStore
from agent.runs.viewing import renderer
from agent.sandbox import Sandbox, Shares, default_workers
from canvas import now_ms
from common.http import ApiError, Refusal

log = logging.getLogger("inhabit.agent")

START_TIMEOUT_S = 10.0


def sandbox_shares(settings: AgentSettings) -> Shares:
    """How the server's sandbox is shared, from the agent's settings."""
    return Shares(workers=settings.sandbox_workers or default_workers(), link_turns=settings.sandbox_link_runs,
                  room_turns=settings.sandbox_room_runs, link_cpu_s=settings.sandbox_link_cpu_s, room_cpu_s=settings.sandbox_room_cpu_s)


class AgentPlugin:
    """The agent as a `server.plugin.Plugin`: prompt and run routes, one hosted peer per room."""

    def __init__(self, *, settings: AgentSettings | None = None, name: str = "agent",
                 limits: PromptLimits | None = None, behaviours: BehaviourLimits | None = None) -> None:
        self.name = name
        self.model = settings or AgentSettings()
        """The agent's part of the settings: its model, the caps per run, `idle_s`."""
        self.idle_s = self.model.idle_s
        """A hosted peer leaves its room after this long without prompts, so the room can unload."""
        self.limits = limits or PromptLimits()
        self.runs = RunStore()
        self.peers: dict[str, AgentPeer] = {}
        self.admit = asyncio.Lock()  # peers start and leave one at a time, so the cap cannot race
        self.sandbox = Sandbox(shares=sandbox_shares(self.model))
        """Every program of this server runs here, rooms and links taking turns (`agent.sandbox.fair`): prompts',
        behaviours' and MCP executes (`agent.mcp` uses it too)."""
        self._code_mode = CodeMode(self.sandbox)
        self.renderer = renderer()
        """Where every room's agent draws its `view`s, rooms taking turns (`agent.runs.viewing`)."""
        self._model_client = ModelClient(self.model)  # one Messages API client for every room's peer, made by the first run
        self._reaper: asyncio.Task[None] | None = None
        self._host: Any = None
        self.behaviour_limits = behaviours or BehaviourLimits()
        self._hosting: Hosting | None = None  # once started: the behaviours, shared by every room's peer
        self.residency: Residency | None = None
        self._placement: Placement | None = None
        self._clock: asyncio.Task[None] | None = None
        self._run_routes = RunRoutes(self.limits, self)
        self._behaviour_routes = BehaviourRoutes(self)
        self._presses = Presses(self, self.behaviour_limits)
        self._routes: list[BaseRoute] = [*self._run_routes.routes, *self._behaviour_routes.routes, *self._presses.routes]

    # the Plugin interface ----------------------------------------------------------------

    @property
    def routes(self) -> Sequence[BaseRoute]:
        return self._routes

    async def startup(self, host: Any) -> None:
        """`host` is a `server.plugin.Host` (typed loosely: the agent does not import the server)."""
        self._host = host
        placement: Placement
        if host.cluster is None:  # the mode, chosen once: one process, its records in SQLite files in the data folder
            run_db, behaviour_db = await self._open_records(host.settings.data)
            placement = EmbeddedPlacement(self)
        else:  # a cluster node: records in PostgreSQL shared by every node, one agent per room across the nodes
            run_db, behaviour_db = await self._open_records(host.cluster.pool)
            placement = ClusterPlacement(host.cluster, self, self.runs, run_db, queue=self.limits.queue)
            self._run_routes.budget.shared = SharedBuckets(host.cluster)
        if host.disk is not None:  # their history: bounded per room, trimmed for the data budget, forgotten with expired rooms
            host.disk.add(run_db, host.settings.disk.room_runs_bytes)
            host.disk.add(behaviour_db, host.settings.disk.room_firings_bytes)
        store = await asyncio.to_thread(BehaviourStore, behaviour_db)
        self._hosting = Hosting(store=store, sandbox=self._code_mode.sandbox, limits=self.behaviour_limits, grant_problem=self._grant_problem,
                                presence_of=host.presence_of)
        self.residency = Residency(self._hosting, self, None if host.settings.open else host.lapses)
        self._placement = placement
        await placement.start()
        host.watch_rooms(self.residency.occupancy)
        self._reaper = asyncio.create_task(self._reap())
        self._clock = asyncio.create_task(self.residency.run())

    async def _open_records(self, where: Path | ConnectionPool) -> tuple[RunRecords, BehaviourRecords]:
        """Run and behaviour records in `where` (off the loop: opening may migrate); run records
        survive restarts through `self.runs`."""
        run_db = await asyncio.to_thread(RunRecords.open, where, self.runs.per_room, self.model.room_record_bytes)
        behaviour_db = await asyncio.to_thread(BehaviourRecords.open, where, self.behaviour_limits.firings_kept)
        self.runs = RunStore(self.runs.per_room, db=run_db, record_bytes=self.model.record_bytes)
        return run_db, behaviour_db

    async def shutdown(self) -> None:
        for task in (self._reaper, self._clock):
            if task is not None:
                task.cancel()
        if self.residency is not None:
            await self.residency.close()
        peers = list(self.peers.values())
        self.peers.clear()
        await asyncio.gather(*(self._close(p) for p in peers), return_exceptions=True)
        self.runs.close()  # writes what is pending; blocking, but only once at shutdown
        if self._hosting is not None:
            self._hosting.store.close()
        if self._placement is not None:  # after the records are written: another node takes the rooms over
            await self._placement.close()
        self._code_mode.close()
        self.renderer.close()

    def gauges(self) -> dict[str, tuple[float, str]]:
        out = {
            "agent_peers": (len(self.peers), "Hosted agent peers resident in rooms."),
            "agent_rate_keys": (len(self._run_routes.budget), "Prompt rate-limit buckets held in memory."),
            "sandbox_turns_held": (self.sandbox.pool.load()[0], "Sandbox turns held (programs running), all rooms together."),
            "sandbox_turns_waiting": (self.sandbox.pool.load()[1], "Programs waiting for their room's and link's turn of the sandbox."),
            **(self._placement.gauges() if self._placement is not None else {}),
            **self._presses.gauges(),
        }
        if self._hosting is not None:
            m = self._hosting.metrics
            out.update({
                "behaviours": (len(self._hosting.store), "Behaviours stored (every status)."),
                "behaviours_active": (sum(1 for _ in self._hosting.store.active()), "Active behaviours."),
                "behaviour_firings_total": (m.firings, "Behaviour firings run."),
                "behaviour_failures_total": (m.failures, "Behaviour firings that failed (nothing written)."),
                "behaviour_firing_seconds_total": (m.seconds, "Seconds from event to commit, summed over firings."),
                "behaviour_firing_seconds_p50": (m.quantile(0.5), "Median seconds from event to commit (last 1,000 firings)."),
                "behaviour_firing_seconds_p99": (m.quantile(0.99), "99th percentile seconds from event to commit (last 1,000 firings)."),
                "behaviour_cpu_seconds_total": (self._hosting.cpu.seconds, "CPU seconds of behaviours' runs charged to their budgets."),
                "behaviour_cpu_paused_total": (m.cpu_paused, "Behaviours paused for using their CPU budget too long."),
                "behaviour_cpu_buckets": (len(self._hosting.cpu), "Behaviour and link CPU buckets held in memory."),
            })
        return out

    @property
    def hosting(self) -> Hosting:
        """The behaviours, shared by every room's peer (once started)."""
        assert self._hosting is not None, "the plugin has not started"
        return self._hosting

    @property
    def placement(self) -> Placement:
        """Where rooms' agents live (once started)."""
        assert self._placement is not None, "the plugin has not started"
        return self._placement

    def _grant_problem(self, installer: Installer) -> str | None:
        """Why a behaviour installed by `installer` may not act now, or None."""
        if self._host.settings.open:
            return None
        if installer.id in self._host.access.revoked:
            return "the link that installed it was revoked"
        if installer.expires is not None and installer.expires <= now_ms():
            return "the link that installed it expired"
        return None

    # work from the routes: wherever the room's agent is ------------------------------------------

    async def submit(self, room: str, text: str, *, author: str, grant: Grant, installer: Installer | None = None) -> AgentRun:
        """Queue a prompt wherever the room's agent is; `Refusal` 507 while the data folder is over
        its budget (a run is new history: `common.disk`)."""
        disk = self._host.disk
        if disk is not None and disk.refusal is not None:
            raise Refusal(507, f"not run: {disk.refusal}")
        prompt = addressed(text, self.name) or text.strip()
        return await self.placement.submit(room, prompt, author=author, grant=grant, installer=installer)

    async def undo(self, room: str, run: AgentRun) -> list[str] | None:
        return await self.placement.undo(room, run)

    async def dispatch(self, change: BehaviourChange) -> Outcome:
        return await self.placement.dispatch(change)

    async def install(self, room: str, request: InstallRequest) -> InstallAnswer:
        """Install a behaviour an MCP client asked for (`agent.mcp`), wherever the room's behaviours are
        held, as the room's own runs install them. `Refusal` when it cannot be carried out now."""
        disk = self._host.disk
        if disk is not None and disk.refusal is not None:
            raise Refusal(507, f"not installed: {disk.refusal}")
        out = await self.placement.dispatch(BehaviourChange(op="install", room=room, id=request.name, by=request.installer.label,
                                                            install=request))
        if out.status != 200:
            raise Refusal(out.status, ApiError.model_validate_json(out.body).error)
        return InstallAnswer.model_validate_json(out.body)

    async def resident(self, room: str) -> AgentPeer:
        """The room's peer on this node, for its behaviours (AgentElsewhere: it is on another node)."""
        return await self.placement.resident(room)

    def release(self, room: str) -> None:
        """Others sharing the run store (MCP sessions, `agent/mcp/endpoint.py`) are done with `room`: its
        records leave memory unless our peer is resident there (they are read back when needed)."""
        if room not in self.peers:
            self.runs.forget(room)

    # hosted peers on this node (what the placement needs: `agent.hosting.placement.Rooms`) -----------

    @property
    def store(self) -> BehaviourStore:
        return self.hosting.store

    def has_peer(self, room: str) -> bool:
        return room in self.peers

    def reacts(self, room: str) -> bool:
        return self.residency is not None and self.residency.reacts(room)

    async def arrive(self, room: str) -> None:
        if self.residency is not None:
            await self.residency.arrive(room)

    async def perform(self, change: BehaviourChange) -> Outcome:
        if change.install is not None:  # an MCP client's install: through the room's peer, as its own runs install
            peer = await self.resident(change.room)  # here: the placement sent it to this node
            answer = await install_requested(peer.behaviours, change.install)
            return Outcome(status=200, body=answer.model_dump_json())
        if change.op == "press":
            return await self._presses.perform(change)
        return await self._behaviour_routes.perform(change)

    async def peer(self, room: str) -> AgentPeer:
        """The room's hosted agent, started (and connected over the websocket) on first use."""
        peer = self.peers.get(room)
        if peer is not None:
            return peer
        async with self.admit:
            peer = self.peers.get(room)
            if peer is None:
                await self._make_room()
                await self.hosting.store.adopt(room)  # cluster mode: its behaviours are ours while we hold it
                host = self._host
                token = None if host.settings.open else host.access.mint(room, "edit")
                credential = host.peers.vouch(room, "agent", self.name)  # the server vouches for it as the agent
                peer = AgentPeer(host.settings.internal_ws, room, token=token, name=self.name, runs=self.runs,
                                 code_mode=self._code_mode, settings=self.model, queue=self.limits.queue, hosting=self._hosting,
                                 model_client=self._model_client, credential=credential,
                                 writer_of=lambda message_id: host.writer_of(room, message_id), budget=self._run_routes.budget,
                                 history_refused=(lambda: host.disk.refusal) if host.disk is not None else None, renderer=self.renderer)
                try:
                    self.peers[room] = await asyncio.wait_for(peer.start(), START_TIMEOUT_S)
                except BaseException:
                    host.peers.withdraw(credential)
                    raise
            return peer

    async def leave(self, room: str) -> None:
        """The room's peer leaves (its run records stay in the database)."""
        async with self.admit:
            await self._leave(room)

    async def evict(self, room: str) -> None:
        """Cluster mode: another node holds this room's agent now; ours leaves, without letting go."""
        async with self.admit:
            peer = self.peers.pop(room, None)
            if peer is not None:
                await self._close(peer)
                self.runs.forget(room)
            await self.hosting.store.drop(room)

    async def _reap(self) -> None:
        while True:
            await asyncio.sleep(min(30.0, self.idle_s / 2))
            async with self.admit:
                for room, peer in list(self.peers.items()):
                    if peer.idle_for() > self.idle_s and not self._needed(room):
                        await self._leave(room)
                await self.placement.let_go_idle()

    async def _leave(self, room: str) -> None:
        """The room's peer leaves (hold `admit`); its run records stay in the database."""
        peer = self.peers.pop(room, None)
        if peer is not None:
            await self._close(peer)
            self.runs.forget(room)
            await self.placement.let_go(room)

    async def _close(self, peer: AgentPeer) -> None:
        """A peer leaves its room; the server stops vouching for its credential."""
        try:
            await peer.close()
        finally:
            self._host.peers.withdraw(peer.credential)

    def _needed(self, room: str) -> bool:
        """The peer hosts behaviours that react to the people in its room: it stays."""
        return self.residency is not None and self.residency.needed(room)

    async def _make_room(self) -> None:
        """Below the peer cap after this (hold `admit`): the idlest peer leaves; PeersFull
        if every peer is working, has prompts waiting, or hosts behaviours people are using."""
        while len(self.peers) >= self.limits.peers:
            idle = [(peer.idle_for(), room) for room, peer in self.peers.items() if peer.idle_for() > 0 and not self._needed(room)]
            if not idle:
                raise PeersFull
            await self._leave(max(idle)[1])
