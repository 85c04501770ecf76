"""Where the agent must be for its behaviours, and when: rooms with people, and schedules.

Why: behaviours run in the room's hosted agent peer, but a peer holds its room in memory, so it
should be there only when needed. A behaviour that reacts to events needs the agent while
anyone else is in the room (nothing happens in an empty room): the server says when a room's
connections change (`Host.watch_rooms`), and the agent joins when people do. A schedule
(`{"every": s}`) needs it at the due time only: if nobody is there, the agent joins (the room
loads), fires, and leaves again, so the room unloads after its grace period and what it drew
is there for whoever comes next. Schedules resume after a restart from the last firing's time.
Installers' links are watched here too (`common.lapses`, handed over as `Host.lapses`): a
behaviour whose installer's link is revoked or expires is paused, with the reason and a chat
line, within a second or so, even while it has nothing to fire on (firings check the link too).

Cluster mode: only the node holding a room's agent lease holds its behaviours (and fires its
schedules). People may be on any node: the peer counts everyone it sees in the room, and a node
where people arrive in a room it does not hold reads whether its behaviours react to them and,
if so, brings the agent: here if nobody holds the room, else the holder is told (`nudge`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Protocol

from agent.behaviours.model import Behaviour
from agent.behaviours.scheduler import Hosting
from agent.contract.events import every_of
from agent.hosting.peer import AgentPeer
from agent.hosting.placement import AgentElsewhere
from canvas import now_ms
from common.lapses import Lapses

log = logging.getLogger("inhabit.agent")

TICK_S = 0.25
GRANT_CHECK_S = 5.0
RETRY_MS = 5_000
LOOK_AGAIN_S = 5.0
"""Cluster mode: how often people arriving in a room held elsewhere make this node look again."""


class Peers(Protocol):
    """What residency needs of this node's hosted peers (`agent.plugin.AgentPlugin`)."""

    @property
    def peers(self) -> Mapping[str, AgentPeer]:
        """The peers resident on this node, by room."""
        ...

    async def resident(self, room: str) -> AgentPeer:
        """Bring the room's peer here (AgentElsewhere: its agent is on another node)."""
        ...

    async def leave(self, room: str) -> None:
        """The room's peer leaves this node."""
        ...


class Residency:
    """Keeps hosted peers where behaviours need them (see the module docstring)."""

    def __init__(self, hosting: Hosting, peers: Peers, lapses: Lapses | None = None) -> None:
        """`lapses`: the process's watcher of links (None: links are checked every GRANT_CHECK_S only)."""
        self.h = hosting
        self.lapses = lapses
        self._links: dict[str, Callable[[], None]] = {}  # installer token id -> stop watching it
        self.here = peers
        self.peers = peers.peers
        self.occupants: dict[str, int] = {}  # room -> open connections (ours included), from the server
        self._due: dict[str, int] = {}  # behaviour id -> when its schedule is next due (ms)
        self._visiting: set[str] = set()  # rooms the agent joined only to fire a schedule
        self._arrivals: set[asyncio.Task[None]] = set()
        self._checked = 0.0
        self._looked: dict[str, float] = {}  # cluster mode: room held elsewhere -> when we last looked at it

    # who is in a room ---------------------------------------------------------------------

    def occupancy(self, room: str, n: int) -> None:
        """The server's word: `room` has `n` connections now (called on every join and leave)."""
        if n > 0:
            self.occupants[room] = n
        else:
            self.occupants.pop(room, None)
            self._looked.pop(room, None)
        if self.others(room) > 0:
            self._visiting.discard(room)  # people are here: the agent stays as for anyone
            if room not in self.peers and (self.reacts(room) or self._look_again(room)):
                task = asyncio.get_running_loop().create_task(self._arrive(room))
                self._arrivals.add(task)
                task.add_done_callback(self._arrivals.discard)

    def others(self, room: str) -> int:
        """Connections to the room other than our peer's: here, or (cluster mode) anywhere the peer sees."""
        peer = self.peers.get(room)
        here = self.occupants.get(room, 0) - (1 if peer is not None else 0)
        return max(here, len(peer.client.awareness()) if peer is not None and peer.client is not None else 0)

    def needed(self, room: str) -> bool:
        """Whether the room's peer must stay: it hosts behaviours that react to people who are here."""
        return self.others(room) > 0 and self.reacts(room)

    def reacts(self, room: str, behaviours: list[Behaviour] | None = None) -> bool:
        """Whether the room has an active behaviour triggered by events (not only a schedule)."""
        return any(b.status == "active" and any(isinstance(t, str) for t in b.on) for b in (self.h.store.list(room) if behaviours is None else behaviours))

    def _look_again(self, room: str) -> bool:
        """Cluster mode: a room held elsewhere (its behaviours are not here): time to read them again?"""
        if self.h.store.holds(room) or time.monotonic() - self._looked.get(room, -LOOK_AGAIN_S) < LOOK_AGAIN_S:
            return False
        self._looked[room] = time.monotonic()
        return True

    async def arrive(self, room: str) -> None:
        """The peer comes for the room's behaviours, if they react to people and it is not there."""
        if room not in self.peers and self.reacts(room):
            await self._arrive(room)

    async def _arrive(self, room: str) -> None:
        try:
            if not self.h.store.holds(room) and not self.reacts(room, await self.h.store.view(room)):
                return
            await self.here.resident(room)
        except AgentElsewhere:  # cluster mode: the room's agent is on another node (told to come)
            pass
        except Exception as e:  # PeersFull, or the room cannot be joined: the next join or tick retries
            log.warning("room %s: the agent could not join for its behaviours: %s", room, type(e).__name__)

    # schedules and grants ----------------------------------------------------------------------

    async def run(self) -> None:
        """Until cancelled: fire due schedules, send visiting peers home, check grants."""
        while True:
            await asyncio.sleep(TICK_S)
            try:
                await self._tick()
            except Exception:
                log.exception("behaviour schedules")

    async def _tick(self) -> None:
        now = now_ms()
        live = set()
        links = set()
        for b in list(self.h.store.active()):
            links.add(b.installer.id)
            if self.lapses is not None and b.installer.id not in self._links:
                self._watch(b.installer.id, b.installer.expires)
            every = every_of(b.on)
            if every is None:
                continue
            live.add(b.id)
            period = int(every * 1000)
            due = self._due.setdefault(b.id, (b.last.t if b.last else b.updated) + period)
            if now < due:
                continue
            self._due[b.id] = due + period if due + period > now else now + period
            if not await self._deliver(b.room, b.id):
                self._due[b.id] = now + RETRY_MS
        for bid in set(self._due) - live:
            del self._due[bid]
        for link in set(self._links) - links:  # no active behaviour of that link left here
            self._links.pop(link)()
        for room in list(self._visiting):
            peer = self.peers.get(room)
            if peer is None:
                self._visiting.discard(room)
            elif self.others(room) <= 0 and peer.idle_for() > 0:
                self._visiting.discard(room)
                await self.here.leave(room)
        if now - self._checked >= GRANT_CHECK_S * 1000:
            self._checked = now
            self._check_grants()

    async def _deliver(self, room: str, bid: str) -> bool:
        peer = self.peers.get(room)
        if peer is None:
            visiting = self.others(room) <= 0
            try:
                peer = await self.here.resident(room)
            except AgentElsewhere:  # cluster mode: the node holding the room's agent fires it
                return False
            except Exception as e:
                log.warning("room %s: the agent could not join to fire a schedule: %s", room, type(e).__name__)
                return False
            if visiting:
                self._visiting.add(room)
        if peer.behaviours is None:
            return False
        peer.behaviours.tick(bid)
        return True

    def _watch(self, link: str, expires: int | None) -> None:
        def lapsed(why: str) -> None:
            self._links.pop(link, None)
            self._check_grants(link)

        assert self.lapses is not None
        self._links[link] = self.lapses.watch(link, expires / 1000 if expires is not None else None, lapsed)

    def _check_grants(self, link: str | None = None) -> None:
        """Pause the active behaviours (of the installer's `link`, or all) whose link lapsed."""
        for b in list(self.h.store.active()):
            if link is not None and b.installer.id != link:
                continue
            problem = self.h.grant_problem(b.installer)
            if problem is None:
                continue
            peer = self.peers.get(b.room)
            if peer is not None and peer.behaviours is not None:
                peer.behaviours.set_status(b, "paused", problem, say=f"Behaviour “{b.name}” paused: {problem}.")
            else:
                b.status, b.reason, b.updated = "paused", problem, now_ms()
                self.h.store.save(b)

    async def close(self) -> None:
        for unwatch in self._links.values():
            unwatch()
        self._links.clear()
        for task in list(self._arrivals):
            task.cancel()
        await asyncio.gather(*self._arrivals, return_exceptions=True)
