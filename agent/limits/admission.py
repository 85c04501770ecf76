"""What a prompt must get past before it costs a model call: rate limits and a bounded queue.

Why our own ~100 lines and not a library: the limiter needs "check several buckets, then take
from all or none" and the queue needs "edit grants first, and an editor's prompt displaces the
newest viewer's when full"; neither is what off-the-shelf token-bucket or queue packages do,
and both are small enough to read in one sitting.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from pydantic import BaseModel

from common.settings import setting

WINDOW_S = 60.0


class RateLimiter:
    """Token buckets per key: `per_minute` prompts per rolling minute, bursts up to that many.

    Bounded memory: a bucket unused for a whole window is full again, so it is forgotten (the
    least recently used are checked first); past `max_keys` the oldest bucket is dropped."""

    def __init__(self, per_minute: int, *, max_keys: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / WINDOW_S
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[Hashable, tuple[float, float]] = OrderedDict()  # key -> (tokens, at)

    def __len__(self) -> int:
        return len(self._buckets)

    def _level(self, key: Hashable, now: float) -> float:
        tokens, at = self._buckets.get(key, (self.capacity, now))
        return min(self.capacity, tokens + (now - at) * self.rate)

    def wait(self, key: Hashable) -> float:
        """Seconds until `key` may take one (0: now). Takes nothing."""
        level = self._level(key, self._clock())
        return 0.0 if level >= 1.0 else (1.0 - level) / self.rate

    def take(self, key: Hashable) -> None:
        """Take one from `key`'s bucket (call after `wait` said 0)."""
        now = self._clock()
        self._buckets[key] = (self._level(key, now) - 1.0, now)
        self._buckets.move_to_end(key)
        self._expire(now)

    def give_back(self, key: Hashable) -> None:
        """Return one taken by `take` (the prompt was refused for another reason after all)."""
        if key in self._buckets:
            tokens, at = self._buckets[key]
            self._buckets[key] = (min(self.capacity, tokens + 1.0), at)

    def _expire(self, now: float) -> None:
        while self._buckets:
            key, (_, at) = next(iter(self._buckets.items()))
            if now - at < WINDOW_S and len(self._buckets) <= self.max_keys:
                break
            del self._buckets[key]


class PeersFull(Exception):
    """Every resident agent peer is busy: no room for another one now."""


class QueueFull(Exception):
    """The room's prompt queue is full."""


T = TypeVar("T")


class PromptQueue(Generic[T]):
    """A room's waiting prompts, at most `size`: edit grants first, FIFO within a grant.

    Why priority: a prompt costs a model call, and viewers must not be able to make editors
    wait behind them. When full, an editor's prompt displaces the NEWEST viewer prompt (which
    `put` returns so the caller can tell its author); a viewer's is refused (`QueueFull`)."""

    def __init__(self, size: int, grant_of: Callable[[T], str]) -> None:
        self.size = size
        self._grant_of = grant_of
        self._lanes: dict[str, deque[T]] = {"write": deque(), "read": deque()}
        self._ready = asyncio.Event()

    def __len__(self) -> int:
        return sum(len(lane) for lane in self._lanes.values())

    def room_for(self, grant: str) -> bool:
        """Whether a prompt with `grant` would be accepted now."""
        return len(self) < self.size or (grant == "write" and bool(self._lanes["read"]))

    def put(self, item: T) -> T | None:
        """Queue `item`; returns a viewer item it displaced, if any. Raises QueueFull."""
        grant = self._grant_of(item)
        if not self.room_for(grant):
            raise QueueFull
        displaced = self._lanes["read"].pop() if len(self) >= self.size else None
        self._lanes["write" if grant == "write" else "read"].append(item)
        self._ready.set()
        return displaced

    async def get(self) -> T:
        """The next item (edit grants first); waits while empty. One consumer."""
        while not len(self):
            self._ready.clear()
            await self._ready.wait()
        lane = self._lanes["write"] or self._lanes["read"]
        return lane.popleft()


class PromptLimits(BaseModel):
    """What prompts may cost: rate limits, the queue per room, the agent peers resident at once.

    `peers` is here because it bounds the runs in flight (one per resident peer), like the
    queue per room; `agent.runs.routes` and the plugin enforce these."""

    per_token: int = setting(6, "prompts one token may post per minute in a room (more: 429)", name="prompts_per_minute", ge=1)
    per_room: int = setting(30, "prompts a room's viewers (view tokens) may post per minute, all together (more: 429); editors' prompts "
                            "use this budget while some is left but are never refused by it", name="room_prompts_per_minute", ge=1)
    queue: int = setting(8, "prompts waiting per room before new ones get 429 (an editor's prompt displaces the newest viewer's)",
                         name="prompt_queue", ge=1)
    peers: int = setting(32, "hosted agent peers resident at once; past it the idlest leaves, and a prompt gets 503 while every one is "
                         "busy", name="agent_peers", ge=1)
