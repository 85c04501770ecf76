"""Write-behind: changes gathered over one event-loop tick, written on one thread, never on the loop.

Why: the agent's run records and behaviours live in memory and are written behind to a
database (SQLite or PostgreSQL, synchronous drivers). Both stores need the same plumbing:
one write per tick however many changes it saw, one writer thread so writes stay in order,
a flush to wait for what was saved so far, and a close that writes what is pending. The
store keeps its own pending batch (what a batch is differs); this class decides when it is
taken and written.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

B = TypeVar("B")


class WriteBehind(Generic[B]):
    """Takes the owner's pending batch (`take`: None when nothing is pending) once per
    event-loop tick after `schedule`, and hands it to `write` on one thread. A failed write is
    logged (with `describe(batch)`) and dropped: memory stays the truth until the next write."""

    def __init__(self, take: Callable[[], B | None], write: Callable[[B], None], *, name: str,
                 describe: Callable[[B], str], log: logging.Logger) -> None:
        self._take = take
        self._write = write
        self._describe = describe
        self._log = log
        self._thread = ThreadPoolExecutor(1, thread_name_prefix=f"inhabit-{name}")
        self._scheduled = False
        self.closed = False

    def schedule(self) -> None:
        """Write what is pending soon: at the end of this loop tick, or now (waiting) off the loop."""
        if self._scheduled or self.closed:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        self._scheduled = True
        loop.call_soon(self._flush_soon)

    def _flush_soon(self) -> None:
        self._scheduled = False
        if not self.closed:
            self._submit()

    def _submit(self) -> Future[None]:
        """Hand the pending batch to the thread; the future is done once it (and every earlier one) is written."""
        batch = self._take()
        return self._thread.submit(self._run, batch) if batch is not None else self._thread.submit(lambda: None)

    def _run(self, batch: B) -> None:
        try:
            self._write(batch)
        except Exception:
            self._log.exception("writing %s", self._describe(batch))

    def flush(self) -> None:
        """Write everything pending now and wait for it (blocking: for shutdown and code off the loop)."""
        if not self.closed:
            self._submit().result()

    async def flush_async(self) -> None:
        """Wait, without blocking the loop, until everything saved so far is written."""
        if not self.closed:
            await asyncio.wrap_future(self._submit())

    def close(self) -> None:
        """Write what is pending, then stop the thread; later changes are not written."""
        if self.closed:
            return
        self.flush()
        self.closed = True
        self._thread.shutdown(wait=True)
