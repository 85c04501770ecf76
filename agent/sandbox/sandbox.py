"""`Sandbox`: run agent JavaScript with granted capabilities, concurrently, off the event loop.

WHY a thread pool: wasmtime calls go through ctypes, which releases the GIL while wasm runs,
so runs on different threads execute in parallel, and the asyncio loop never blocks. The pool
is a `FairPool` (`agent.sandbox.fair`): a run names its `Share` (room, link) and takes turns
with the others, within its link's and room's caps and CPU budgets.
"""
from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from .capability import Bindings
from .fair import UNKEYED, FairPool, Share, Shares
from .record import Limits, RunError, RunRecord, RunStats, well_formed
from .runner import Run
from .vm import VM, Snapshot

log = logging.getLogger("inhabit.sandbox")

_snap: Snapshot | None = None
_snap_lock = threading.Lock()


def snapshot() -> Snapshot:
    """The process-wide boot snapshot (QuickJS + prelude), built on first use."""
    global _snap
    if _snap is None:
        with _snap_lock:
            if _snap is None:
                _snap = VM.boot()[1]
    return _snap


def default_workers() -> int:
    """Twice the cores, at most 8: runs wait on host calls at times, but never many more threads than cores."""
    return min(8, (os.cpu_count() or 2) * 2)


class Sandbox:
    def __init__(self, limits: Limits | None = None, workers: int | None = None, shares: Shares | None = None) -> None:
        self.limits = limits or Limits()
        self.shares = shares or Shares(workers=workers or default_workers())
        self.workers = self.shares.workers
        self.pool = FairPool(self.shares, name="sandbox")

    def warm(self) -> None:
        """Compile/load the module and build the snapshot now rather than on first run."""
        snapshot()

    def run_sync(self, code: str, bindings: Bindings = (), limits: Limits | None = None, clock_ms: float | None = None, *,
                 globals: Mapping[str, Any] | None = None, collect: Sequence[str] = (), seed: int | None = None) -> RunRecord:
        """Run `code`; ALWAYS a RunRecord (a host failure is an error of kind "internal").

        `clock_ms` is what the guest's clocks read for the whole run (default: now) and `seed`
        what `Math.random` is seeded with (default: random); pass a record's `stats.clock_ms` and
        `stats.seed` to replay a run. `globals` (JSON values) are defined before the program
        runs; the ones named in `collect` come back in `record.collected` if it succeeds."""
        clock = float(time.time_ns() // 1_000_000) if clock_ms is None else clock_ms  # whole ms, as Date.now() shows it
        t0 = time.perf_counter()
        try:
            return Run(bindings, limits or self.limits, clock, globals=globals, collect=collect, seed=seed).execute(snapshot(), code)
        except Exception as e:  # a host bug must cost one run, not the caller (and never a 500)
            log.exception("sandbox run failed")
            stats = RunStats(wall_ms=round((time.perf_counter() - t0) * 1e3, 3), start_ms=0.0, memory_peak_bytes=0,
                             calls=0, console_bytes=0, clock_ms=clock, seed=seed or 0)
            error = RunError(kind="internal", message=well_formed(f"the sandbox host failed: {type(e).__name__}: {e}"))
            return RunRecord(ok=False, error=error, stats=stats)

    async def run(self, code: str, bindings: Bindings = (), limits: Limits | None = None, clock_ms: float | None = None, *,
                  globals: Mapping[str, Any] | None = None, collect: Sequence[str] = (), seed: int | None = None,
                  share: Share = UNKEYED) -> RunRecord:
        """`run_sync` on the pool in `share`'s turn: rooms take turns, then links within a room
        (`FairPool`). Raises `OverBudget` (nothing ran) when the share spent its CPU for the minute."""
        run = functools.partial(self.run_sync, code, bindings, limits, clock_ms, globals=globals, collect=collect, seed=seed)
        return await self.pool.run(share, run)

    def close(self) -> None:
        self.pool.close()
