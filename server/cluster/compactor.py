"""Compaction in cluster mode: merge a room's stream into its PostgreSQL snapshot, then trim it.

One worker per room at a time, by a lease in Redis (`inhabit:{room}:compact`, renewed while it
works). Who compacts:
- a node whose room crossed its history bounds (the same triggers as on one node) offers the
  document it holds, encoded at that moment, with the stream id it has read up to;
- every node sweeps the rooms whose oldest uncompacted entry is older than `snapshot_every_s`
  (those it has loaded first; a room nobody has loaded, after twice that, is loaded from
  PostgreSQL + the stream), so an edit reaches PostgreSQL within that time and a node that
  died leaves nothing behind in Redis for long.

Why it cannot lose an update, including when a worker dies at any point:
1. the snapshot written holds every entry up to the id it claims to cover (the document was
   encoded from a state that had applied all of them);
2. it is written only if it covers more than the stored one (`Snapshots.save`): overlapping
   workers never move a room backwards;
3. the stream is trimmed only AFTER that commit, and only below `covered - stream_window_s`:
   every trimmed entry is inside a committed snapshot. A worker that dies before the commit
   changed nothing; one that dies between commit and trim leaves a longer stream, trimmed by
   the next compaction;
4. loaders and lagging readers detect a trim past their position by the trim mark (see
   `loading.py`, `rooms.py`) and read the newer snapshot instead of skipping entries.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Protocol

from common.cluster import PREFIX, Lease

from ..store import Snapshot
from .snapshots import Snapshots
from .streams import RoomStreams

log = logging.getLogger("inhabit.cluster")

HOLD_ENV = "INHABIT_TEST_COMPACT_HOLD"
"""Test hook (documented, never set in production): a folder. While `<folder>/hold-<step>`
exists (step: `save`, before the snapshot is written; `trim`, after it is written and before
the stream is trimmed), a compaction reaching that step creates `<folder>/at-<step>` and waits,
so a test can kill the worker exactly there."""

class Rooms(Protocol):
    """Where a worker finds a room's document (`ClusterRooms`)."""

    def has_room(self, room: str) -> bool: ...

    def encoded(self, room: str) -> tuple[Snapshot, str] | None:
        """The loaded room's document encoded now, and the stream id it holds up to."""
        ...

    async def load_cold(self, room: str) -> tuple[Snapshot, str]:
        """A room this node has not loaded, built from PostgreSQL and its stream."""
        ...


def lease_key(room: str) -> str:
    return f"{PREFIX}{{{room}}}:compact"


class Compactor:
    def __init__(self, streams: RoomStreams, snapshots: Snapshots, lease: Lease, every_s: float) -> None:
        self.streams = streams
        self.snapshots = snapshots
        self.lease = lease
        self.every_s = every_s
        self.rooms: Rooms | None = None  # set once the rooms exist (they are built on the writer, built on this)
        self._busy: dict[str, asyncio.Task[None]] = {}
        self.failing: str | None = None
        self.compactions = 0
        self.skipped = 0
        self.failures = 0
        hold = os.environ.get(HOLD_ENV)
        self._hold = Path(hold) if hold else None

    def offer(self, room: str, snap: Snapshot, covers: str) -> None:
        """A room's document encoded now, holding every entry up to `covers`: compact with it,
        unless a worker of this node is at that room already (its own run covers it)."""
        if room not in self._busy:
            self._start(room, snap, covers)

    def _start(self, room: str, snap: Snapshot | None, covers: str | None) -> None:
        self._busy[room] = asyncio.get_running_loop().create_task(self._compact(room, snap, covers), name=f"compact-{room}")

    async def sweep_forever(self) -> None:
        """Every quarter of `every_s`: compact the rooms whose edits have waited too long."""
        while True:
            await asyncio.sleep(self.every_s / 4)
            try:
                for room in await self.streams.due(self.every_s):
                    if room not in self._busy and self.rooms is not None and self.rooms.has_room(room):
                        self._start(room, None, None)
                for room in await self.streams.due(2 * self.every_s):
                    if room not in self._busy:
                        self._start(room, None, None)
            except Exception as exc:  # Redis away: the health check says so; try next round
                log.debug("compaction sweep: %s", exc)

    async def _compact(self, room: str, snap: Snapshot | None, covers: str | None) -> None:
        try:
            async with self.lease.hold(lease_key(room)) as held:
                if not held:  # another node's worker is at it
                    self.skipped += 1
                    return
                if snap is None or covers is None:
                    assert self.rooms is not None
                    snap, covers = self.rooms.encoded(room) or await self.rooms.load_cold(room)
                await self._reached("save")
                await asyncio.to_thread(self.snapshots.save, room, snap, covers)
                await self._reached("trim")
                await self.streams.trim(room, covers)
            self.compactions += 1
            if self.failing is not None:
                log.warning("compaction works again (%s was the last failure)", self.failing)
                self.failing = None
        except Exception as exc:  # PostgreSQL or Redis away: the stream keeps everything; retried by the sweep
            self.failures += 1
            if self.failing is None:
                log.error("cannot compact room %s: %s; its edits stay in Redis until compaction works again", room, exc)
            self.failing = f"{type(exc).__name__}: {exc}"
        finally:
            self._busy.pop(room, None)

    async def _reached(self, step: str) -> None:
        if self._hold is None or not (self._hold / f"hold-{step}").exists():
            return
        (self._hold / f"at-{step}").touch()
        while (self._hold / f"hold-{step}").exists():
            await asyncio.sleep(0.05)

    def gauges(self) -> dict[str, tuple[float, str]]:
        return {
            "compactions_total": (self.compactions, "Room snapshots written to PostgreSQL and streams trimmed."),
            "compactions_skipped_total": (self.skipped, "Compactions left to another node's worker (its lease)."),
            "compaction_failures_total": (self.failures, "Compactions that failed (retried by the sweep)."),
            "compaction_failing": (int(self.failing is not None), "1 while the last compaction failed."),
        }

    async def close(self, timeout: float = 5.0) -> None:
        """Let running compactions finish (bounded), then stop them."""
        tasks = list(self._busy.values())
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=timeout)
            for task in late:
                task.cancel()
