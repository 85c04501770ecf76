"""One prompt budget per link, whatever the door: HTTP prompts and chat lines to the agent.

Why one object: a link that may post 6 prompts a minute over HTTP must not get 120 by writing
`@agent …` lines into the chat instead. The HTTP route (`agent.runs.routes`) and the hosted
agent's chat path (`agent.hosting.peer`, told each line's writer by the server) both take from
these buckets: per link in a room (`PromptLimits.per_token`), and per room for viewers
(`per_room`; editors use it while some is left but are never refused by it). In cluster mode
the buckets are Redis's (`agent.limits.shared`), so a link has one budget whichever node it
reaches and whichever node holds the room's agent; with Redis away, this node's buckets hold.
A prompt's share is taken before anything awaits (so concurrent prompts see it) and given back
when the prompt is not taken after all (queue full, no peer).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Hashable

from redis.exceptions import RedisError

from agent.limits.admission import PromptLimits, RateLimiter
from agent.limits.shared import SharedBuckets

log = logging.getLogger("inhabit.agent")

Refused = tuple[str, float]
"""Why a prompt may not go on now, and the seconds until it may."""
GiveBack = Callable[[], Awaitable[None]]
"""Return a prompt's share of the budget (it was not taken after all)."""


async def _nothing() -> None:
    return None


class PromptBudget:
    """The prompt rate limits of every room on this node (shared by the nodes of a cluster)."""

    def __init__(self, limits: PromptLimits) -> None:
        self.limits = limits
        self.per_token = RateLimiter(limits.per_token)
        self.per_room = RateLimiter(limits.per_room)
        self.shared: SharedBuckets | None = None
        """Cluster mode: the buckets every node takes from (set by the plugin at start-up)."""

    def __len__(self) -> int:
        """Buckets held in this node's memory."""
        return len(self.per_token) + len(self.per_room)

    async def take(self, room: str, link: str | None, role: str) -> tuple[Refused | None, GiveBack]:
        """Take one prompt from `link`'s budget in `room` (`role` "edit" or "view"; link None: not
        known, counted as a viewer under one shared key). Returns why not (None: taken) and how to
        give it back."""
        key = link if link is not None else "?unknown"
        editor = role == "edit" and link is not None
        if self.shared is not None:
            try:
                return await self._shared(self.shared, room, key, editor)
            except (RedisError, OSError) as exc:  # Redis away: this node's buckets still hold
                log.warning("shared prompt limits unavailable (%s); counting on this node", exc)
        refused = self._refused(room, key, editor)
        if refused is not None:
            return refused, _nothing
        taken = self._take(room, key, editor)  # before any await: concurrent prompts see it

        async def give_back() -> None:
            for limiter, k in taken:
                limiter.give_back(k)

        return None, give_back

    async def _shared(self, shared: SharedBuckets, room: str, key: str, editor: bool) -> tuple[Refused | None, GiveBack]:
        buckets = [(f"link:{key}", self.limits.per_token, True), ("viewers", self.limits.per_room, not editor)]
        wait, which = await shared.take(room, buckets)
        if wait:
            return self.refusal(which, wait), _nothing

        async def give_back() -> None:
            await shared.give_back(room, [b for b in buckets if b[2]])

        return None, give_back

    def refusal(self, bucket: int, wait: float) -> Refused:
        """What to say when bucket 0 (the link's) or 1 (the room's viewers') refused for `wait` s."""
        if bucket == 0:
            return f"too many prompts from this link: at most {self.limits.per_token} a minute; try again in {math.ceil(wait)} s", wait
        return f"too many prompts from viewers of this room: at most {self.limits.per_room} a minute; try again in {math.ceil(wait)} s", wait

    def _refused(self, room: str, key: str, editor: bool) -> Refused | None:
        wait = self.per_token.wait((key, room))
        if wait:
            return self.refusal(0, wait)
        wait = self.per_room.wait(room) if not editor else 0.0
        return self.refusal(1, wait) if wait else None

    def _take(self, room: str, key: str, editor: bool) -> list[tuple[RateLimiter, Hashable]]:
        taken: list[tuple[RateLimiter, Hashable]] = [(self.per_token, (key, room))]
        if not editor or self.per_room.wait(room) == 0:  # editors use the room's budget when there is some
            taken.append((self.per_room, room))
        for limiter, k in taken:
            limiter.take(k)
        return taken
