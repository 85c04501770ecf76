"""`FairPool`: a few worker threads shared fairly by rooms and by links (issue 19).

Why: sandbox runs and renders are CPU-bound and the machine has a couple of cores. With one
FIFO pool, four sessions of one view link looping `while(true){}` held every thread and another
room's trivial execute waited seconds; one link's 20 queued renders held a victim's `view` for
minutes. Here every piece of work asks for a *turn* under its `Share` (room, link):

- Turns are granted round-robin over the rooms that wait, then over the links waiting in that
  room, so one room's backlog never delays another room's next turn by more than one turn each.
- A link holds at most `link_turns` turns at once (a link is keyed by its token id alone, so a
  `'*'` link counts once across rooms) and a room at most `room_turns`.
- A link and a room each have a CPU budget per minute (a token bucket of `*_cpu_s` seconds
  refilled over a minute), charged with the thread's CPU time of each run (`time.thread_time`,
  which counts wasm and C code on that thread). Past it, its turns are refused with
  `OverBudget`, saying when to retry: new ones at once, waiting ones when they come up.
- At most `workers` turns are held server-wide: the thread count is fixed.

Why our own and not a library: the executors of `concurrent.futures`/anyio are FIFO with one
global limit; nothing there keys a queue by two levels with caps and budgets. The state is
touched from the event loop and from worker threads, so it is guarded by one lock; waiters are
`concurrent.futures.Future`s, which any loop can await (`asyncio.wrap_future`).

Imports nothing of ours (the sandbox package's rule); the renderer uses a sibling instance.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")

MINUTE = 60.0
BUCKETS_KEPT = 4096
"""Budget buckets held before the full (idle) ones are dropped."""


@dataclass(frozen=True)
class Share:
    """Whose work it is: the room, and the link (a token id; for the hosted agent, its own name)."""

    room: str
    link: str


@dataclass(frozen=True)
class Shares:
    """How a `FairPool` is shared: threads, turns per link and per room, CPU-seconds per minute."""

    workers: int = 4
    link_turns: int = 1
    room_turns: int = 2
    link_cpu_s: float = 10.0
    room_cpu_s: float = 20.0


UNKEYED = Share("", "")
"""Work nobody is charged for (a caller that names no share: the CLI's own agent, tests): it
takes turns in the rotation like a room, but no cap or budget applies to it."""


class OverBudget(Exception):
    """A share spent its CPU budget for the minute: nothing ran; `retry_after` seconds until it may."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class _Bucket:
    """CPU-seconds left of a per-minute budget: refills continuously, may go below zero (a long
    run is charged whole once it ends), and admits new work while above zero."""

    def __init__(self, capacity: float, now: float) -> None:
        self.capacity, self.level, self.at = capacity, capacity, now

    def refill(self, now: float) -> float:
        self.level = min(self.capacity, self.level + (now - self.at) * self.capacity / MINUTE)
        self.at = now
        return self.level

    def wait(self, now: float) -> float:
        """Seconds until the bucket admits work again (0: now)."""
        level = self.refill(now)
        return 0.0 if level > 0 else (-level + 1e-3) * MINUTE / self.capacity


@dataclass
class _Ticket:
    share: Share
    granted: concurrent.futures.Future[None] = field(default_factory=concurrent.futures.Future)
    held: bool = False
    released: bool = False


class Turn:
    """A granted turn: `run` does the CPU-bound part on one of the pool's threads."""

    def __init__(self, pool: FairPool, ticket: _Ticket) -> None:
        self._pool, self._ticket = pool, ticket
        self._running: concurrent.futures.Future[Any] | None = None

    async def run(self, fn: Callable[[], T], timeout: float | None = None) -> T:
        """`fn()` on a pool thread, charged to the share. Past `timeout` seconds, TimeoutError:
        the thread cannot be stopped, so it keeps this turn's slot until `fn` returns."""
        if self._running is not None:
            raise RuntimeError("one run per turn")
        future: concurrent.futures.Future[T] = self._pool._executor().submit(self._pool._charged, self._ticket.share, fn)
        self._running = future
        waiting = asyncio.wrap_future(future)
        if timeout is None:
            return await waiting
        waiting.add_done_callback(_retrieve)  # a run that outlives its timeout ends unobserved
        return await asyncio.wait_for(asyncio.shield(waiting), timeout)

    @property
    def busy(self) -> bool:
        """Its run still holds a thread (it outlived its timeout, or the waiter was cancelled)."""
        return self._running is not None and not self._running.done()


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


class FairPool:
    """Turns on a fixed set of threads, shared per room and per link (see the module docstring)."""

    def __init__(self, shares: Shares | None = None, *, name: str = "inhabit-fair") -> None:
        self.shares = shares or Shares()
        self.name = name
        self._lock = threading.Lock()
        self._waiting: OrderedDict[str, OrderedDict[str, deque[_Ticket]]] = OrderedDict()  # room -> link -> tickets, in turn order
        self._held = 0
        self._room_held: dict[str, int] = {}
        self._link_held: dict[str, int] = {}
        self._buckets: dict[tuple[str, str], _Bucket] = {}  # ("link"|"room", key) -> its budget
        self._pool: ThreadPoolExecutor | None = None

    # asking for a turn --------------------------------------------------------------------

    @asynccontextmanager
    async def turn(self, share: Share = UNKEYED) -> AsyncIterator[Turn]:
        """Wait for `share`'s turn (raises `OverBudget` at once if its budget is spent); the turn
        is given back on leaving, or when its run ends if that is later."""
        ticket = self._ask(share)
        try:
            await asyncio.wrap_future(ticket.granted)
        except BaseException:
            ticket.granted.cancel()  # still waiting: it leaves the line
            self._give_back(ticket)  # granted meanwhile: given back (nothing, if it was not)
            raise
        turn = Turn(self, ticket)
        try:
            yield turn
        finally:
            running = turn._running
            if running is not None and not running.done():
                running.add_done_callback(lambda _: self._give_back(ticket))
            else:
                self._give_back(ticket)

    async def run(self, share: Share, fn: Callable[[], T], timeout: float | None = None) -> T:
        """`fn()` on a pool thread in `share`'s turn."""
        async with self.turn(share) as turn:
            return await turn.run(fn, timeout)

    def _ask(self, share: Share) -> _Ticket:
        with self._lock:
            if (refused := self._refusal(share, time.monotonic())) is not None:
                raise refused
            ticket = _Ticket(share)
            self._waiting.setdefault(share.room, OrderedDict()).setdefault(share.link, deque()).append(ticket)
            self._grant()
            return ticket

    def _refusal(self, share: Share, now: float) -> OverBudget | None:
        """Why `share` may not start work now (its link's or its room's budget is spent), or None."""
        if share == UNKEYED:
            return None
        for kind, key, capacity in (("link", share.link, self.shares.link_cpu_s), ("room", share.room, self.shares.room_cpu_s)):
            bucket = self._buckets.get((kind, key))
            wait = bucket.wait(now) if bucket is not None else 0.0
            if wait > 0:
                who = "this link" if kind == "link" else f"room {share.room!r}"
                return OverBudget(f"{who} used its {capacity:g} CPU-seconds a minute of the {self.name}: try again in {math.ceil(wait)} s", wait)
        return None

    # the rotation (lock held) ---------------------------------------------------------------

    def _grant(self) -> None:
        """Grant turns while threads are free: the first room in rotation with a link that may go."""
        s = self.shares
        while self._held < s.workers:
            chosen: _Ticket | None = None
            for room, links in list(self._waiting.items()):
                if self._room_held.get(room, 0) >= s.room_turns and room != UNKEYED.room:
                    continue
                for link, tickets in list(links.items()):
                    if self._link_held.get(link, 0) >= s.link_turns and room != UNKEYED.room:
                        continue
                    while tickets and chosen is None:
                        ticket = tickets.popleft()
                        if not ticket.granted.set_running_or_notify_cancel():  # its waiter left
                            continue
                        if (refused := self._refusal(ticket.share, time.monotonic())) is not None:
                            ticket.granted.set_exception(refused)  # its budget ran out while it waited
                            continue
                        chosen = ticket
                    if tickets:
                        links.move_to_end(link)  # this link goes last in its room
                    else:
                        del links[link]
                    if chosen is not None:
                        break
                if not links:
                    del self._waiting[room]
                elif chosen is not None:
                    self._waiting.move_to_end(room)  # this room goes last
                if chosen is not None:
                    break
            if chosen is None:
                return
            chosen.held = True
            self._held += 1
            self._room_held[chosen.share.room] = self._room_held.get(chosen.share.room, 0) + 1
            self._link_held[chosen.share.link] = self._link_held.get(chosen.share.link, 0) + 1
            chosen.granted.set_result(None)

    def _give_back(self, ticket: _Ticket) -> None:
        with self._lock:
            if ticket.released or not ticket.held:
                return
            ticket.released = True
            self._held -= 1
            for counts, key in ((self._room_held, ticket.share.room), (self._link_held, ticket.share.link)):
                counts[key] -= 1
                if not counts[key]:
                    del counts[key]
            self._grant()

    # running and charging -----------------------------------------------------------------

    def _charged(self, share: Share, fn: Callable[[], T]) -> T:
        """On a pool thread: `fn()`, its CPU time charged to the link and the room."""
        started = time.thread_time()
        try:
            return fn()
        finally:
            self.charge(share, time.thread_time() - started)

    def charge(self, share: Share, cpu_s: float) -> None:
        """Take `cpu_s` from the share's link and room budgets."""
        if share == UNKEYED:
            return
        with self._lock:
            now = time.monotonic()
            if len(self._buckets) > BUCKETS_KEPT:  # the idle ones have refilled: forgetting them changes nothing
                self._buckets = {k: b for k, b in self._buckets.items() if b.refill(now) < b.capacity}
            for kind, key, capacity in (("link", share.link, self.shares.link_cpu_s), ("room", share.room, self.shares.room_cpu_s)):
                bucket = self._buckets.get((kind, key))
                if bucket is None:
                    bucket = self._buckets[(kind, key)] = _Bucket(capacity, now)
                bucket.refill(now)
                bucket.level -= cpu_s

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.shares.workers, thread_name_prefix=self.name.replace(" ", "-"))
            return self._pool

    # looking and closing --------------------------------------------------------------------

    def load(self) -> tuple[int, int]:
        """(turns held, turns waiting)."""
        with self._lock:
            return self._held, sum(len(t) for links in self._waiting.values() for t in links.values())

    def close(self) -> None:
        """Stop the threads (at shutdown); a later run starts new ones."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
