"""Lapses: whoever holds something open with a link is told when that link is revoked or expires.

Why: a token is checked when a websocket, an MCP session or a behaviour starts, but each of
these then lasts; without this, a revoked or expired link kept writing on its open socket.
One watcher per process, one task, looking every `PERIOD_S`, and cheap whatever the number of
open things: a revocation is found by comparing the revocation list's ids with the ones seen
last time (the list hands out the same frozenset while nothing changed, so an unchanged list
costs one identity check), and an expiry by the top of a heap of the watched links' expiries.
Only the holders of a lapsed link are visited; nothing is scanned per connection per tick.

The list itself is the one `Access` reads (`common.access.RevocationList`: the data dir's
`revoked.txt`; cluster mode `common.shared_access.SharedRevocations`: the PostgreSQL table every
node re-reads), so a revocation made on any node reaches the holders on every node.

Holders are callbacks `fn(why)`, called once, on the event loop, with `REVOKED` or `EXPIRED`
(what the page shows); `watch` returns the function that stops watching (call it when the
connection or session ends). A link already revoked or expired when watched is reported at
the next look.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .access import Revocations, TokenInfo

log = logging.getLogger("inhabit.access")

PERIOD_S = 0.25
"""How often the watcher looks: a lapse is acted on within this (plus the list's own re-read)."""
REVOKED = "this link was revoked"
EXPIRED = "this link expired"

Holder = Callable[[str], None]
"""Told why (`REVOKED`, `EXPIRED`) the link it holds something open with no longer works."""


def _nothing() -> None:
    return None


class Lapses:
    """The per-process watcher of open links (see the module docstring)."""

    def __init__(self, revoked: Revocations, period: float = PERIOD_S) -> None:
        self.revoked = revoked
        self.period = period
        self._holders: dict[str, dict[int, Holder]] = {}  # token id -> holders by ticket
        self._tickets = itertools.count()
        self._expiries: list[tuple[float, str]] = []  # (Unix s, token id): a heap, one entry per id
        self._queued: set[str] = set()  # ids with an entry in the heap
        self._check: set[str] = set()  # ids watched since the last look that had lapsed already
        self._seen: frozenset[str] = revoked.ids()
        self._task: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        """Links watched now."""
        return len(self._holders)

    def watch(self, token_id: str, expires: float | None, fn: Holder) -> Callable[[], None]:
        """Tell `fn` once when the link `token_id` (expiring at `expires`, Unix seconds, if ever)
        is revoked or expires; returns the function that stops watching."""
        ticket = next(self._tickets)
        self._holders.setdefault(token_id, {})[ticket] = fn
        if expires is not None and token_id not in self._queued:
            heapq.heappush(self._expiries, (expires, token_id))
            self._queued.add(token_id)
        if token_id in self.revoked.ids() or (expires is not None and expires <= time.time()):
            self._check.add(token_id)

        def unwatch() -> None:
            held = self._holders.get(token_id)
            if held is not None:
                held.pop(ticket, None)
                if not held:
                    del self._holders[token_id]

        return unwatch

    def watch_token(self, info: TokenInfo, fn: Holder) -> Callable[[], None]:
        """`watch` for a checked token (auth off: `OPEN`, which never lapses, is not watched)."""
        if info.id == "open":
            return _nothing
        return self.watch(info.id, info.expires.timestamp() if info.expires else None, fn)

    def look(self) -> None:
        """One look: tell the holders of links revoked since the last look, or expired by now."""
        ids = self.revoked.ids()
        if ids is not self._seen:
            fresh = ids - self._seen
            self._seen = ids
            for token_id in fresh & self._holders.keys():
                self._tell(token_id, REVOKED)
        now = time.time()
        heap = self._expiries
        while heap and heap[0][0] <= now:
            _, token_id = heapq.heappop(heap)
            self._queued.discard(token_id)
            self._tell(token_id, EXPIRED)
        if self._check:
            checks, self._check = self._check, set()
            for token_id in checks:
                if token_id in ids:
                    self._tell(token_id, REVOKED)  # expired ones were told by the heap above

    def _tell(self, token_id: str, why: str) -> None:
        for fn in (self._holders.pop(token_id, None) or {}).values():
            try:
                fn(why)
            except Exception:
                log.exception("telling a holder of link %s that it lapsed", token_id)

    async def run(self) -> None:
        """Look every `period` seconds until cancelled."""
        while True:
            await asyncio.sleep(self.period)
            try:
                self.look()
            except Exception:  # the list could not be read: the next look tries again
                log.exception("watching links for revocation and expiry")

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.run())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
