"""Where a room's agent lives and how work reaches it: the seam between the plugin and the mode.

Why a seam: the plugin does the same things in both modes (start a room's peer, queue a prompt,
undo a run, change a behaviour) and only *where* differs. On one process everything is here
(`EmbeddedPlacement`, a few lines); in a cluster a lease says which node holds a room's agent and
work is forwarded to it (`agent.hosting.cluster_placement.ClusterPlacement`). The plugin picks
one at start-up, the way `server.app.create_app` picks the server's writer and rooms, and never
asks which mode it is in again.

A placement calls back into the agent on this node through `Rooms` (its peers, records and
behaviours), which `agent.plugin.AgentPlugin` implements and hands over whole.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from agent.behaviours.routes import BehaviourChange, Outcome
from agent.behaviours.store import BehaviourStore
from agent.contract.canvas import Grant
from agent.contract.events import Installer
from agent.hosting.peer import AgentPeer
from agent.runs.store import AgentRun, RunStore


class AgentElsewhere(Exception):
    """The room's agent runs on another node (its lease is held there)."""


class Rooms(Protocol):
    """What a placement needs of the agent on this node (`agent.plugin.AgentPlugin`)."""

    runs: RunStore
    admit: asyncio.Lock
    """Held while peers start and leave (so a room's lease is never let go under a starting peer)."""

    @property
    def store(self) -> BehaviourStore:
        """The behaviours of the rooms whose agent is here."""
        ...

    def has_peer(self, room: str) -> bool:
        """Whether the room's peer is resident on this node."""
        ...

    async def peer(self, room: str) -> AgentPeer:
        """The room's peer on this node, started on first use (PeersFull past the cap)."""
        ...

    async def evict(self, room: str) -> None:
        """The room's agent is no longer ours: its peer leaves, its behaviours are dropped."""
        ...

    def reacts(self, room: str) -> bool:
        """Whether the room has behaviours that react to people (its peer comes for them)."""
        ...

    async def arrive(self, room: str) -> None:
        """People arrived in the room (here or on another node): its peer comes if behaviours react."""
        ...

    async def perform(self, change: BehaviourChange) -> Outcome:
        """Carry out a change to one of the room's behaviours, held here."""
        ...


class Placement(Protocol):
    """Where rooms' agents and behaviours live, and how prompts, undos and changes reach them."""

    async def start(self) -> None: ...

    async def close(self) -> None:
        """After the records are written: in a cluster, other nodes take the rooms over."""
        ...

    def gauges(self) -> dict[str, tuple[float, str]]: ...

    async def submit(self, room: str, prompt: str, *, author: str, grant: Grant, installer: Installer | None = None) -> AgentRun:
        """Queue a prompt where the room's agent is (PeersFull, QueueFull)."""
        ...

    async def undo(self, room: str, run: AgentRun) -> list[str] | None:
        """The strokes erased by undoing `run` where the room's agent is (None: no answer in time)."""
        ...

    async def dispatch(self, change: BehaviourChange) -> Outcome:
        """Carry out a change to a behaviour where the room's behaviours are held."""
        ...

    async def resident(self, room: str) -> AgentPeer:
        """The room's peer on this node, for its behaviours; AgentElsewhere if the room's agent
        is on another node (a room never gets a second agent)."""
        ...

    async def let_go(self, room: str) -> None:
        """The room's peer left this node (hold `Rooms.admit`): give up what kept the room here."""
        ...

    async def let_go_idle(self) -> None:
        """Give up rooms kept here for something that is gone (hold `Rooms.admit`)."""
        ...


class EmbeddedPlacement:
    """One process: every room's agent and behaviours are here."""

    def __init__(self, rooms: Rooms) -> None:
        self.rooms = rooms

    async def start(self) -> None:
        """This process owns the records: runs the one before it left unfinished are marked interrupted."""
        await self.rooms.runs.interrupt_leftovers()

    async def close(self) -> None:
        return None

    def gauges(self) -> dict[str, tuple[float, str]]:
        return {}

    async def submit(self, room: str, prompt: str, *, author: str, grant: Grant, installer: Installer | None = None) -> AgentRun:
        peer = await self.rooms.peer(room)
        return peer.submit(prompt, author=author, grant=grant, source="http", installer=installer)

    async def undo(self, room: str, run: AgentRun) -> list[str] | None:
        peer = await self.rooms.peer(room)
        self.rooms.runs.adopt(run)  # read from the records: held while the peer marks it undone
        return peer.undo(run.id)

    async def dispatch(self, change: BehaviourChange) -> Outcome:
        return await self.rooms.perform(change)

    async def resident(self, room: str) -> AgentPeer:
        return await self.rooms.peer(room)

    async def let_go(self, room: str) -> None:
        return None

    async def let_go_idle(self) -> None:
        return None
