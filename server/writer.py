"""The Writer: group commit of room updates to the `Store`, off the event loop.

`GroupCommit` is the skeleton both room writers share: this one (embedded mode, SQLite) and
`server.cluster.writer.StreamWriter` (cluster mode, Redis streams)."""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

from .store import Snapshot, Store

log = logging.getLogger("inhabit.store")


def settle(done: asyncio.Future[None]) -> None:
    """Resolve `done` unless it already is (or was cancelled): an `after_commit` callback to await."""
    if not done.done():
        done.set_result(None)


class RoomWriter(Protocol):
    """Where rooms commit their updates, the seam `create_app` picks once: `Writer` (embedded,
    SQLite) or `server.cluster.writer.StreamWriter` (cluster, Redis streams). Rooms cannot
    tell them apart."""

    unavailable: str | None
    """Why edits cannot be committed now (rooms refuse edits meanwhile); None when they can."""

    def append(self, room: str, update: bytes, writer: str = "") -> None:
        """Queue an update; `writer`: who wrote the chat lines it inserts (an `Actor` as JSON; cluster mode shares it)."""
        ...
    def presence(self, room: str, msg: bytes, identity: str) -> None: ...
    def snapshot(self, room: str, snap: Snapshot) -> None: ...
    def after_commit(self, fn: Callable[..., object], *args: object) -> None: ...
    async def flush(self) -> None: ...
    def holds(self, room: str) -> bool: ...
    def gauges(self) -> dict[str, tuple[float, str]]: ...
    def start(self) -> None: ...
    async def close(self) -> None: ...


Waiting = list[tuple[Callable[..., object], tuple[object, ...]]]
"""Callbacks (`fn`, `args`) waiting for a batch to be committed, in order."""
Q = TypeVar("Q")


class GroupCommit(Generic[Q]):
    """The skeleton both room writers share (`Writer` here, `server.cluster.writer.StreamWriter`):
    whatever is queued while one batch is in flight goes in the next, one batch in flight, and
    `after_commit(fn, *args)` runs `fn` once everything queued so far is committed.

    A subclass keeps its own queue (`Q`: what one batch is) and says whether something is
    queued (`_queued`), takes it (`_take`), commits it (`_write`), and may commit on the spot
    (`_commit_here`: the embedded writer's inline fast path)."""

    TASK = "writer"
    """The commit task's name."""

    def __init__(self) -> None:
        self._waiting: Waiting = []
        self._inflight: tuple[Q, Waiting] | None = None
        self._wake = asyncio.Event()
        self._oldest: float | None = None  # when the oldest queued write was queued
        self._inflight_since: float | None = None  # the same, for the batch being committed
        self._task: asyncio.Task[None] | None = None
        self.unavailable: str | None = None
        """Why edits cannot be committed right now (None when they can)."""
        self.last_flush_s = 0.0
        self.rows_written = 0
        self.errors = 0

    def _queued(self) -> bool:
        raise NotImplementedError

    def _take(self) -> Q:
        """The queue as one batch, leaving the queue empty."""
        raise NotImplementedError

    async def _write(self, batch: Q, retry: bool) -> None:
        """Commit `batch` (with bookkeeping); raise only when it is not committed and not `retry`."""
        raise NotImplementedError

    def _commit_here(self) -> bool:
        """Commit the queue now, on the loop, if that is cheap; False leaves it to the task."""
        return False

    async def _idle(self) -> None:
        """Work to do after a batch is committed (the embedded store's checkpoint, when due)."""

    def after_commit(self, fn: Callable[..., object], *args: object) -> None:
        """Call `fn(*args)` once everything queued so far is committed (now, if it is)."""
        if self._queued():
            self._waiting.append((fn, args))
            if not self._commit_here():
                self._wake.set()
        elif self._inflight is not None:
            self._inflight[1].append((fn, args))
        else:
            fn(*args)

    async def flush(self) -> None:
        """Wait until everything queued so far is committed."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.after_commit(settle, done)
        await done

    @property
    def lag(self) -> float:
        """Seconds the oldest uncommitted update has waited."""
        oldest = self._inflight_since or self._oldest
        return 0.0 if oldest is None else time.monotonic() - oldest

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=self.TASK)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queued():
                await self._commit(retry=True)
                await self._idle()  # between batches too: a writer that is never idle still checkpoints
            await self._idle()  # woken for it alone (a checkpoint due after an inline commit)

    async def _commit(self, retry: bool) -> None:
        """Commit the queue as one batch; then run the callbacks that waited for it, in order."""
        batch = self._inflight = (self._take(), self._waiting)
        self._waiting = []
        self._inflight_since, self._oldest = self._oldest, None
        await self._write(batch[0], retry)
        self._inflight, self._inflight_since = None, None
        self._release(batch[1])

    def _release(self, waiting: Waiting) -> None:
        for fn, args in waiting:
            try:
                fn(*args)
            except Exception:  # a callback's failure must not stop the others or the writer
                log.exception("after-commit callback failed")

    async def _stop(self) -> None:
        """Stop the commit task (a batch it had in flight stays in `_inflight`)."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None


Appends = list[tuple[str, bytes]]
Snapshots = dict[str, Snapshot]


class Writer(GroupCommit[tuple[Appends, Snapshots]]):
    """Group commit to the `Store`: commits whatever is queued as soon as something is.

    `after_commit(fn, *args)` runs `fn` once everything queued so far is on disk: the room
    holds its broadcasts there, so a killed process loses nothing anybody has seen. When a
    commit fails (disk full, read-only) the batch stays queued and is retried with backoff;
    meanwhile `unavailable` says why, and rooms refuse new edits. One log line per failure
    episode, one when it is over.
    """

    RETRY_FIRST_S = 0.05
    RETRY_MAX_S = 2.0
    INLINE_BYTES = 64 * 1024
    """A batch of updates up to this size is committed on the event loop, where it is queued
    (~25 µs for SQLite in WAL mode without fsync): a task hop and two thread hand-offs per
    commit would cost more CPU and latency than the insert. Snapshots, bigger batches, and
    commits while the store is busy go to the worker thread."""
    CHECKPOINT_EVERY_S = 1.0
    CHECKPOINT_BYTES = 4 * 1024 * 1024
    """The WAL is copied back into the database (by the thread) every second, or sooner once
    this much was written, so it stays small (SQLite's own auto-checkpoint is off: it would
    run inside a commit, possibly on the event loop)."""
    TASK = "store-writer"

    def __init__(self, store: Store) -> None:
        super().__init__()
        self.store = store
        self._appends: Appends = []
        self._snapshots: Snapshots = {}
        self._thread: _WorkerThread | None = None
        self._checkpointed = time.monotonic()
        self._unchecked = 0  # bytes committed since the last checkpoint

    # the hot path: no await, no I/O

    def append(self, room: str, update: bytes, writer: str = "") -> None:
        """Queue an update; it is committed by the next `after_commit` (or `flush`). `writer` is
        for the other nodes of a cluster: one process knows it already."""
        if self._oldest is None:
            self._oldest = time.monotonic()
        self._appends.append((room, update))

    def presence(self, room: str, msg: bytes, identity: str) -> None:
        """Presence is not stored (in cluster mode, `server.cluster.writer` shares it with the other nodes)."""

    def snapshot(self, room: str, snap: Snapshot) -> None:
        """Replace the room's history by `snap`, which must include every appended update."""
        if self._oldest is None:
            self._oldest = time.monotonic()
        # queued updates of this room are inside the snapshot: they need not be written any more
        self._appends = [a for a in self._appends if a[0] != room]
        self._snapshots[room] = snap
        self._wake.set()

    def _queued(self) -> bool:
        return bool(self._appends or self._snapshots)

    def _take(self) -> tuple[Appends, Snapshots]:
        batch = self._appends, self._snapshots
        self._appends, self._snapshots = [], {}
        return batch

    def _commit_here(self) -> bool:
        """A small batch with no commit in flight is committed right here, on the loop, so an
        update reaches the other peers without a task or thread hop; the rest wakes the
        commit task (snapshots, big batches, retries after a failure)."""
        if self._inflight is not None or self.unavailable is not None:
            return False
        appends, snaps = self._appends, self._snapshots
        if snaps or sum(len(u) for _, u in appends) > self.INLINE_BYTES:
            return False
        t0 = time.monotonic()
        try:
            if not self.store.try_write(appends):
                return False
        except Exception as exc:  # disk full, read-only: the task retries with backoff
            self._failed(exc)
            return False
        waiting = self._waiting
        self._appends, self._snapshots, self._waiting, self._oldest = [], {}, [], None
        self._committed((appends, snaps), t0)
        self._release(waiting)
        return True

    def holds(self, room: str) -> bool:
        """Whether some write of `room` is not committed yet (load must wait for it)."""
        batches = [(self._appends, self._snapshots)]
        if self._inflight is not None:
            batches.append(self._inflight[0])
        return any(room in snaps or any(r == room for r, _ in appends) for appends, snaps in batches)

    @property
    def pending(self) -> int:
        inflight = len(self._inflight[0][0]) + len(self._inflight[0][1]) if self._inflight else 0
        return len(self._appends) + len(self._snapshots) + inflight

    def gauges(self) -> dict[str, tuple[float, str]]:
        """For /metrics, read at scrape time."""
        return {
            "persistence_lag_seconds": (round(self.lag, 6), "Age of the oldest update not yet committed."),
            "persistence_pending": (self.pending, "Updates and snapshots waiting for the writer."),
            "persistence_last_flush_seconds": (round(self.last_flush_s, 6), "Duration of the last commit."),
            "persistence_rows_written_total": (self.rows_written, "Update rows committed."),
            "persistence_errors_total": (self.errors, "Failed commits (retried)."),
            "persistence_unavailable": (int(self.unavailable is not None), "1 while edits cannot be saved."),
        }

    # the commit task

    async def _idle(self) -> None:
        if self._checkpoint_due():
            await self._checkpoint()

    def _checkpoint_due(self) -> bool:
        return bool(self._unchecked) and (self._unchecked > self.CHECKPOINT_BYTES or time.monotonic() - self._checkpointed > self.CHECKPOINT_EVERY_S)

    async def _checkpoint(self) -> None:
        self._checkpointed, self._unchecked = time.monotonic(), 0
        try:
            await self._worker().run(self.store.checkpoint)
        except Exception as exc:  # the WAL just grows until the next try; commits still work
            log.warning("store: checkpoint failed: %s", exc)

    def _worker(self) -> _WorkerThread:
        if self._thread is None:
            self._thread = _WorkerThread(asyncio.get_running_loop())
        return self._thread

    async def _write(self, batch: tuple[Appends, Snapshots], retry: bool) -> None:
        delay = self.RETRY_FIRST_S
        while True:
            t0 = time.monotonic()
            try:
                await self._worker().run(self.store.write, batch[0], batch[1])
                break
            except Exception as exc:  # disk full, read-only, I/O error, or our bug: keep the batch
                self._failed(exc)
                if not retry:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.RETRY_MAX_S)
        self._committed(batch, t0)

    def _committed(self, batch: tuple[Appends, Snapshots], t0: float) -> None:
        """Bookkeeping after a commit (its callbacks run next)."""
        self.last_flush_s = time.monotonic() - t0
        self.rows_written += len(batch[0])
        self._unchecked += sum(len(u) for _, u in batch[0]) + sum(len(snap.data) for snap in batch[1].values())
        if self._checkpoint_due():
            self._wake.set()  # the task does it, on the thread
        if self.unavailable is not None:
            log.warning("store: saving edits again (%s was the last failure)", self.unavailable)
            self.unavailable = None

    def _failed(self, exc: BaseException) -> None:
        self.errors += 1
        if self.unavailable is None:  # one line per episode, not one per retry
            log.error("store: cannot save edits to %s: %s; refusing edits and retrying until it works", self.store.path, exc)
        self.unavailable = str(exc)

    async def close(self) -> None:
        """Stop the task and try once to commit everything still queued."""
        await self._stop()
        if self._inflight is not None:  # cancelled mid-retry: put that batch back in front
            (appends, snaps), waiting = self._inflight
            self._appends = appends + self._appends
            self._snapshots = {**snaps, **self._snapshots}
            self._waiting = waiting + self._waiting
            self._inflight = None
            self._oldest = self._inflight_since
        if self._appends or self._snapshots:
            try:
                await self._commit(retry=False)
            except Exception:
                log.error("store: %d edits could not be saved at shutdown", self.pending)


class _WorkerThread:
    """One long-lived thread running the commits, in order.

    What asyncio.to_thread does, for half the CPU per call (no executor, context copy or
    future chaining): a commit per update at hundreds per second makes that count.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._jobs: queue.SimpleQueue[tuple[Callable[..., object], tuple[object, ...], asyncio.Future[object]]] = queue.SimpleQueue()
        threading.Thread(target=self._serve, name="store-writer", daemon=True).start()

    async def run(self, fn: Callable[..., object], *args: object) -> object:
        done: asyncio.Future[object] = self._loop.create_future()
        self._jobs.put((fn, args, done))
        return await done

    def _serve(self) -> None:
        while True:
            fn, args, done = self._jobs.get()
            try:
                result = fn(*args)
            except BaseException as exc:  # handed to the awaiting coroutine
                self._loop.call_soon_threadsafe(_settle, done, None, exc)
            else:
                self._loop.call_soon_threadsafe(_settle, done, result, None)


def _settle(done: asyncio.Future[object], result: object, exc: BaseException | None) -> None:
    if done.done():  # the awaiting coroutine was cancelled
        return
    if exc is not None:
        done.set_exception(exc)
    else:
        done.set_result(result)
