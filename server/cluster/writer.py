"""The StreamWriter: cluster mode's commit point is the XADD to the room's stream.

It has the embedded `Writer`'s interface (rooms cannot tell them apart): `append` queues an
update, `after_commit(fn)` runs `fn` once everything queued so far is in Redis, so a room
forwards an update to its connections only after Redis acknowledged it, exactly as it waits
for SQLite on one node. Group commit as there: whatever was queued while one batch was in
flight goes in the next, one script call per room, all rooms in one pipeline.

What cannot be appended is never acknowledged: the room it belongs to is dropped (its
connections closed with 4503 and told to reconnect), because its document now holds updates
the stream does not, and anything appended after them would depend on them. The clients still
hold those updates and send them again when they reconnect; nothing anybody saw is lost.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from wire import protocol as p

from .streams import RoomStreams

if TYPE_CHECKING:
    from ..store import Snapshot
    from .compactor import Compactor

log = logging.getLogger("inhabit.cluster")

Batch = dict[str, list[tuple[bytes, str]]]
"""Room -> messages to append, in order, each with the identity of its sender (presence only)."""
Waiting = list[tuple[Callable[..., object], tuple[object, ...]]]


class StreamWriter:
    """Appends rooms' updates and presence to their streams; the `Writer` of cluster mode."""

    def __init__(self, streams: RoomStreams, compactor: Compactor, positions: dict[str, str]) -> None:
        self.streams = streams
        self.compactor = compactor
        self.positions = positions  # room -> the last stream id its document holds (the reader keeps it)
        self.on_failed: Callable[[str | None, str], None] = lambda room, why: None
        """Told (room, why) when a room's append failed, (None, why) when Redis is away."""
        self._queue: Batch = {}
        self._waiting: Waiting = []
        self._inflight: tuple[Batch, Waiting] | None = None
        self._wake = asyncio.Event()
        self._oldest: float | None = None
        self._inflight_since: float | None = None
        self._task: asyncio.Task[None] | None = None
        self.unavailable: str | None = None
        """Why edits cannot be committed now (Redis away); set and cleared by the node's health check."""
        self.last_flush_s = 0.0
        self.rows_written = 0
        self.entries = 0
        self.appends = 0
        self.errors = 0

    # the hot path: no await, no I/O

    def append(self, room: str, update: bytes) -> None:
        """Queue an update; committed by the next batch (`after_commit` tells when)."""
        self._queue_message(room, p.sync_update(update), "")

    def presence(self, room: str, msg: bytes, identity: str) -> None:
        """Queue a presence change for the other nodes (not waited for: presence is not stored)."""
        if self.unavailable is None:
            self._queue_message(room, msg, identity)
            self._wake.set()

    def _queue_message(self, room: str, msg: bytes, identity: str) -> None:
        if self._oldest is None:
            self._oldest = time.monotonic()
        queue = self._queue.get(room)
        if queue is None:
            self._queue[room] = [(msg, identity)]
        else:
            queue.append((msg, identity))

    def after_commit(self, fn: Callable[..., object], *args: object) -> None:
        """Call `fn(*args)` once everything queued so far is appended (now, if it is)."""
        if self._queue:
            self._waiting.append((fn, args))
            self._wake.set()
        elif self._inflight is not None:
            self._inflight[1].append((fn, args))
        else:
            fn(*args)

    def snapshot(self, room: str, snap: Snapshot) -> None:
        """A room's document, encoded now: a compaction candidate covering the stream up to
        where this node has read it (the compactor stores it if it wins the room's lease)."""
        at = self.positions.get(room)
        if at is not None:
            self.compactor.offer(room, snap, at)

    async def flush(self) -> None:
        done = asyncio.get_running_loop().create_future()
        self.after_commit(lambda: done.done() or done.set_result(None))
        await done

    def holds(self, room: str) -> bool:
        """Whether some append of `room` is not acknowledged yet (a reload waits for it)."""
        return room in self._queue or (self._inflight is not None and room in self._inflight[0])

    @property
    def pending(self) -> int:
        inflight = sum(map(len, self._inflight[0].values())) if self._inflight else 0
        return sum(map(len, self._queue.values())) + inflight

    @property
    def lag(self) -> float:
        oldest = self._inflight_since or self._oldest
        return 0.0 if oldest is None else time.monotonic() - oldest

    def gauges(self) -> dict[str, tuple[float, str]]:
        """For /metrics, read at scrape time (the embedded writer's names, plus the stream's)."""
        return {
            "persistence_lag_seconds": (round(self.lag, 6), "Age of the oldest update not yet appended to its stream."),
            "persistence_pending": (self.pending, "Updates and presence changes waiting to be appended."),
            "persistence_last_flush_seconds": (round(self.last_flush_s, 6), "Duration of the last append round trip."),
            "persistence_rows_written_total": (self.rows_written, "Updates appended to room streams."),
            "persistence_errors_total": (self.errors, "Failed appends (their rooms were dropped, their clients reconnect)."),
            "persistence_unavailable": (int(self.unavailable is not None), "1 while edits cannot be saved."),
            "stream_entries_appended_total": (self.entries, "Stream entries appended (updates and presence)."),
            "stream_append_calls_total": (self.appends, "Append script calls (one per room per batch)."),
        }

    # the commit loop

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="stream-writer")

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                await self._commit()

    async def _commit(self) -> None:
        batch = self._inflight = (self._queue, self._waiting)
        self._queue, self._waiting = {}, []
        self._inflight_since, self._oldest = self._oldest, None
        t0 = time.monotonic()
        try:
            results = await self.streams.append(batch[0])
        except Exception as exc:  # Redis away or gone mid-way: none of it counts as committed
            self.errors += 1
            self.on_failed(None, f"Redis is unavailable ({type(exc).__name__}: {exc})")
        else:
            self.last_flush_s = time.monotonic() - t0
            self.appends += len(results)
            for room, result in results.items():
                if isinstance(result, Exception):
                    self.errors += 1
                    self.on_failed(room, str(result))
                else:
                    messages = batch[0][room]
                    self.entries += len(messages)
                    self.rows_written += sum(1 for m, _ in messages if m[0] == p.MSG_SYNC)
        finally:
            self._inflight, self._inflight_since = None, None
        for fn, args in batch[1]:  # a dropped room's connections are closed: what they wait for is a no-op
            try:
                fn(*args)
            except Exception:
                log.exception("after-commit callback failed")

    async def close(self) -> None:
        """Append what is still queued (one try), then stop."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        if self._queue and self.unavailable is None:
            await self._commit()
