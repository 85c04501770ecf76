"""What behaviours' firings may cost in CPU: one book per node, charged after every firing.

Why: a behaviour runs by itself, with no person and no model call between firings, so without a
bound 8 behaviours `every: 5` burning 0.6 s each held a core for as long as the server ran, from
an empty room, and a '*' link's behaviours in 4 rooms held 1.7 cores (another room's behaviour
answered in 350 ms instead of 10 ms). Here a firing's cost is its sandbox run's thread CPU time
(`RunStats.cpu_ms`: the wasm, the host calls it made, its record), charged after the run to two
buckets: the behaviour's, and its installing link's. The link's bucket is keyed by the link
alone, so a '*' link's behaviours in every room share one budget (a room's link only ever acts
in its room: per link per room). Open mode has no links (everyone is `OPEN`): its bucket is per room.

A bucket refills at its budget per minute and holds at most `BURST_S` seconds of refill. A
firing may start while both its buckets are out of debt, so one firing can take a bucket into
debt (at most one run's timeout per room: a room fires one behaviour at a time), and the next
firing of that behaviour (or of that link) waits until the debt is paid; its events stay
pending, merged, as for the rate limit. A firing is charged what its behaviour's last firing
cost as it starts (its link's last one's for a first firing), and the difference once it ran;
and a link has at most one firing running at a time on the node (its other rooms' wait for it
to end, woken when it does). Else a '*' link's rooms, all waiting on the same bucket, started
together the moment it was out of debt, and on a loaded machine (where a run's wall time is
several times its CPU time) its runs filled the sandbox's threads: another room's behaviour
then waited for one of them to end (0.2 to 2 s rather than 10 ms).

Why not `agent.limits.admission.RateLimiter`: it counts whole prompts and refuses before; a
firing's CPU is known only after it ran, so these buckets are charged after and may go into debt.

A behaviour whose firings keep waiting for `cpu_pause_s` in a row (every firing of the streak
waited: one that did not ends it) is paused by the scheduler with a chat line saying why.

The book is this node's: in cluster mode a room's behaviours fire on the node holding the room's
agent, so a '*' link whose rooms' agents are on several nodes gets its budget once per node.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Literal

from agent.behaviours.model import Behaviour
from agent.behaviours.settings import BehaviourLimits
from agent.contract.events import Installer
from common.access import OPEN

BURST_S = 10.0
"""A full bucket holds this many seconds of its refill: an idle behaviour may burst at most that much."""
SLACK_S = 1e-6
"""Debt below this is none (float rounding of a refill that just paid it)."""

LINK_TURN_S = 5.0
"""A firing waiting for its link's running one also looks again after this long (it is woken when it ends)."""
MAX_KEPT = 10_000
"""Last firing costs remembered (behaviours and links): bounded memory."""

Budget = Literal["behaviour", "link"]


class CpuBuckets:
    """CPU-second buckets per key, charged after the fact (a bucket may go into debt).

    Bounded memory: the buckets are kept least recently charged first, and one full again is
    forgotten (a full bucket and no bucket are the same); past `max_keys` the oldest is dropped."""

    def __init__(self, per_minute: float, *, clock: Callable[[], float] = time.monotonic, max_keys: int = 10_000) -> None:
        self.per_minute = per_minute
        self.rate = per_minute / 60.0
        self.capacity = self.rate * BURST_S
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[Hashable, tuple[float, float]] = OrderedDict()  # key -> (level, at)

    def __len__(self) -> int:
        return len(self._buckets)

    def _level(self, key: Hashable, now: float) -> float:
        level, at = self._buckets.get(key, (self.capacity, now))
        return min(self.capacity, level + (now - at) * self.rate)

    def wait(self, key: Hashable) -> float:
        """Seconds until `key`'s bucket is out of debt (0: it may fire now)."""
        level = self._level(key, self._clock())
        return 0.0 if level > -SLACK_S else -level / self.rate

    def charge(self, key: Hashable, seconds: float) -> None:
        """Take `seconds` from `key`'s bucket (negative: give back what was taken ahead)."""
        now = self._clock()
        self._buckets[key] = (min(self.capacity, self._level(key, now) - seconds), now)
        self._buckets.move_to_end(key)
        while self._buckets:
            oldest = next(iter(self._buckets))
            if self._level(oldest, now) < self.capacity and len(self._buckets) <= self.max_keys:
                break
            del self._buckets[oldest]


@dataclass(frozen=True)
class Held:
    """Why a behaviour may not fire now: the budget that holds it and for how long, and whether
    it has been held long enough to pause it (`why`: the reason to give)."""

    wait: float
    budget: Budget | None = None
    why: str | None = None


FREE = Held(0.0)


class CpuBook:
    """The CPU budgets of every behaviour on this node, and of the links that installed them."""

    def __init__(self, limits: BehaviourLimits, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        self.behaviours = CpuBuckets(limits.cpu_s_per_minute, clock=clock)
        self.links = CpuBuckets(limits.link_cpu_s_per_minute, clock=clock)
        self.seconds = 0.0
        """CPU seconds charged, in all (for /metrics)."""
        self._streak: dict[str, float] = {}  # behaviour id -> when its current run of waiting firings began
        self._last: dict[Hashable, float] = {}  # behaviour id, or link -> CPU seconds its last firing cost (what the next is charged ahead)
        self._waited: set[str] = set()  # behaviours held since their last firing
        self._running: set[Hashable] = set()  # links with a firing running
        self._wakers: dict[Hashable, list[Callable[[], None]]] = {}  # link -> what to call when its firing ends

    def __len__(self) -> int:
        """Buckets held in memory."""
        return len(self.behaviours) + len(self.links)

    @staticmethod
    def link_of(room: str, installer: Installer) -> Hashable:
        return ("open", room) if installer.id == OPEN.id else installer.id

    def check(self, b: Behaviour, wake: Callable[[], None]) -> Held:
        """Whether `b` may fire now; if not, how long until it may (`wake` is called if it may
        sooner: its link's running firing ended), and (once it has waited `cpu_pause_s` in a row
        for its budgets) why it should pause."""
        link = self.link_of(b.room, b.installer)
        if link in self._running:  # not over budget: only waiting its turn
            self._wakers.setdefault(link, []).append(wake)
            return Held(LINK_TURN_S)
        waits: list[tuple[float, Budget]] = [(self.behaviours.wait(b.id), "behaviour"), (self.links.wait(link), "link")]
        wait, budget = max(waits)
        if wait <= 0:
            return FREE
        now = self._clock()
        began = self._streak.setdefault(b.id, now)
        self._waited.add(b.id)
        if now - began < self.limits.cpu_pause_s:
            return Held(wait, budget)
        return Held(wait, budget, self._why(budget))

    def start(self, b: Behaviour) -> float:
        """`b` starts a firing: charge what its last one cost, ahead (returned, for `fired`)."""
        link = self.link_of(b.room, b.installer)
        ahead = self._last.get(b.id, self._last.get(link, 0.0))
        self._take(b.id, b.room, b.installer, ahead)
        self._running.add(link)
        return ahead

    def fired(self, b: Behaviour, cpu_s: float, ahead: float = 0.0) -> None:
        """`b`'s firing ran, using `cpu_s` (`ahead` of it charged by `start`); a firing that did not wait ends a streak."""
        if b.id not in self._waited:
            self._streak.pop(b.id, None)
        self._waited.discard(b.id)
        link = self.link_of(b.room, b.installer)
        self._running.discard(link)
        for wake in self._wakers.pop(link, ()):
            wake()
        self._last.pop(link, None)  # re-inserted last: the dict is kept in the order links fired
        self._last[b.id] = self._last[link] = cpu_s
        while len(self._last) > MAX_KEPT:
            del self._last[next(iter(self._last))]
        self.seconds += max(0.0, cpu_s)
        self._take(b.id, b.room, b.installer, cpu_s - ahead)

    def charge(self, behaviour: str, room: str, installer: Installer, cpu_s: float) -> None:
        """Charge a run of behaviour `behaviour` outside its firings (its install run) to its budgets."""
        self.seconds += max(0.0, cpu_s)
        self._take(behaviour, room, installer, cpu_s)

    def _take(self, behaviour: str, room: str, installer: Installer, cpu_s: float) -> None:
        self.behaviours.charge(behaviour, cpu_s)
        self.links.charge(self.link_of(room, installer), cpu_s)

    def forget(self, behaviour: str) -> None:
        """`behaviour` was resumed, paused or removed: a new streak starts from its next wait."""
        self._streak.pop(behaviour, None)
        self._waited.discard(behaviour)
        self._last.pop(behaviour, None)

    def _why(self, budget: Budget) -> str:
        span = _duration(self.limits.cpu_pause_s)
        if budget == "behaviour":
            return f"it used its CPU budget of {self.limits.cpu_s_per_minute:g} s a minute for {span}"
        return (f"the behaviours its link installed used their shared CPU budget of {self.limits.link_cpu_s_per_minute:g} s a minute "
                f"for {span}")


def _duration(seconds: float) -> str:
    if seconds >= 60:
        minutes = seconds / 60
        return f"{minutes:g} minute{'s' if minutes != 1 else ''}"
    return f"{seconds:g} s"
