"""The StreamWriter: cluster mode's commit point is the XADD to the room's stream.

It has the embedded `Writer`'s interface (rooms cannot tell them apart): `append` queues an
update, `after_commit(fn)` runs `fn` once everything queued so far is in Redis, so a room
forwards an update to its connections only after Redis acknowledged it, exactly as it waits
for SQLite on one node. Group commit as there (`server.writer.GroupCommit`): whatever was queued while one batch was in
flight goes in the next, one script call per room, all rooms in one pipeline.

What cannot be appended is never acknowledged: the room it belongs to is dropped (its
connections closed with 4503 and told to reconnect), because its document now holds updates
the stream does not, and anything appended after them would depend on them. The clients still
hold those updates and send them again when they reconnect; nothing anybody saw is lost.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from wire import protocol as p

from ..writer import GroupCommit
from .streams import RoomStreams

if TYPE_CHECKING:
    from ..store import Snapshot
    from .compactor import Compactor

Batch = dict[str, list[tuple[bytes, str]]]
"""Room -> messages to append, in order, each with the identity of its sender (presence) or the
writer of the chat lines it inserts (updates)."""


class StreamWriter(GroupCommit[Batch]):
    """Appends rooms' updates and presence to their streams; the `Writer` of cluster mode."""

    TASK = "stream-writer"

    def __init__(self, streams: RoomStreams, compactor: Compactor, positions: dict[str, str]) -> None:
        super().__init__()
        self.streams = streams
        self.compactor = compactor
        self.positions = positions  # room -> the last stream id its document holds (the reader keeps it)
        self.on_failed: Callable[[str | None, str], None] = lambda room, why: None
        """Told (room, why) when a room's append failed, (None, why) when Redis is away."""
        self._queue: Batch = {}
        self.entries = 0
        self.appends = 0
        # `unavailable` (Redis away) is set and cleared by the node's health check

    # the hot path: no await, no I/O

    def append(self, room: str, update: bytes, writer: str = "") -> None:
        """Queue an update; committed by the next batch (`after_commit` tells when). `writer`:
        who wrote the chat lines it inserts (an `Actor` as JSON), for the node holding the
        room's agent; stored in the entry's identity field (which awareness entries use too)."""
        self._queue_message(room, p.sync_update(update), writer)

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

    def snapshot(self, room: str, snap: Snapshot) -> None:
        """A room's document, encoded now: a compaction candidate covering the stream up to
        where this node has read it (the compactor stores it if it wins the room's lease)."""
        at = self.positions.get(room)
        if at is not None:
            self.compactor.offer(room, snap, at)

    def holds(self, room: str) -> bool:
        """Whether some append of `room` is not acknowledged yet (a reload waits for it)."""
        return room in self._queue or (self._inflight is not None and room in self._inflight[0])

    @property
    def pending(self) -> int:
        inflight = sum(map(len, self._inflight[0].values())) if self._inflight else 0
        return sum(map(len, self._queue.values())) + inflight

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

    # the commit task

    def _queued(self) -> bool:
        return bool(self._queue)

    def _take(self) -> Batch:
        batch, self._queue = self._queue, {}
        return batch

    async def _write(self, batch: Batch, retry: bool) -> None:
        """One try; what failed is reported to `on_failed`, never raised (its waiters run all the
        same: a dropped room's connections are closed, what they wait for is a no-op)."""
        t0 = time.monotonic()
        try:
            results = await self.streams.append(batch)
        except Exception as exc:  # Redis away or gone mid-way: none of it counts as committed
            self.errors += 1
            self.on_failed(None, f"Redis is unavailable ({type(exc).__name__}: {exc})")
            return
        self.last_flush_s = time.monotonic() - t0
        self.appends += len(results)
        for room, result in results.items():
            if isinstance(result, Exception):
                self.errors += 1
                self.on_failed(room, str(result))
            else:
                messages = batch[room]
                self.entries += len(messages)
                self.rows_written += sum(1 for m, _ in messages if m[0] == p.MSG_SYNC)

    async def close(self) -> None:
        """Append what is still queued (one try), then stop."""
        await self._stop()
        self._inflight, self._inflight_since = None, None  # cancelled mid-append: not acknowledged
        if self._queue and self.unavailable is None:
            await self._commit(retry=False)
