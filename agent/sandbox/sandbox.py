"""`Sandbox`: run agent JavaScript with granted capabilities, concurrently, off the event loop.

WHY a thread pool: wasmtime calls go through ctypes, which releases the GIL while wasm runs,
so runs on different threads execute in parallel, and the asyncio loop never blocks.
"""
from __future__ import annotations

import asyncio
import os
import threading
from concurrent.futures import ThreadPoolExecutor

from .capability import Bindings
from .record import Limits, RunRecord
from .runner import Run
from .vm import VM, Snapshot

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


class Sandbox:
    def __init__(self, limits: Limits | None = None, workers: int | None = None) -> None:
        self.limits = limits or Limits()
        self.workers = workers or min(8, (os.cpu_count() or 2) * 2)
        self._pool: ThreadPoolExecutor | None = None

    def warm(self) -> None:
        """Compile/load the module and build the snapshot now rather than on first run."""
        snapshot()

    def run_sync(self, code: str, bindings: Bindings = (), limits: Limits | None = None) -> RunRecord:
        return Run(bindings, limits or self.limits).execute(snapshot(), code)

    async def run(self, code: str, bindings: Bindings = (), limits: Limits | None = None) -> RunRecord:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="inhabit-sandbox")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self.run_sync, code, bindings, limits)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
