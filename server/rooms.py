"""RoomManager: rooms are loaded from the store on first use and unloaded when idle.

Memory holds only rooms somebody is in (plus a grace period, so a reload of the page does not
pay for a reload of the document).
"""

from __future__ import annotations

import asyncio
import logging

from pycrdt import Doc

from .metrics import Metrics
from .room import Room
from .store import Store, Writer

log = logging.getLogger("inhabit.rooms")


class RoomManager:
    def __init__(self, store: Store, writer: Writer, metrics: Metrics, grace: float = 30.0, compact_every: int = 500) -> None:
        self.store = store
        self.writer = writer
        self.metrics = metrics
        self.grace = grace
        self.compact_every = compact_every
        self.rooms: dict[str, Room] = {}
        self._loading: dict[str, asyncio.Future[Room]] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}

    async def get(self, name: str) -> Room:
        """The loaded room, loading it once even if many peers arrive together."""
        room = self.rooms.get(name)
        if room is not None:
            return room
        fut = self._loading.get(name)
        if fut is not None:
            return await asyncio.shield(fut)
        fut = asyncio.get_running_loop().create_future()
        self._loading[name] = fut
        try:
            # anything of this room still queued must be on disk before we read it back
            await self.writer.flush()
            blobs, stored = await asyncio.to_thread(self.store.load, name)
            doc = Doc()
            for blob in blobs:
                doc.apply_update(blob)
            room = Room(name, doc, self.writer, self.metrics, stored, self.compact_every)
            self.rooms[name] = room
            self.metrics.rooms_loaded += 1
            fut.set_result(room)
            self._schedule_unload(room)  # until somebody joins
            return room
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()  # mark retrieved
            raise
        finally:
            del self._loading[name]

    async def acquire(self, name: str) -> Room:
        """The room, pinned in memory while it has connections."""
        room = await self.get(name)
        timer = self._timers.pop(name, None)
        if timer is not None:
            timer.cancel()
        return room

    def release(self, room: Room) -> None:
        """Call after `room.leave(conn)`: start the grace period if the room is now empty."""
        if not room.conns:
            self._schedule_unload(room)

    def _schedule_unload(self, room: Room) -> None:
        if room.conns or room.name in self._timers:
            return
        loop = asyncio.get_running_loop()
        self._timers[room.name] = loop.call_later(self.grace, self._unload, room.name)

    def _unload(self, name: str) -> None:
        self._timers.pop(name, None)
        room = self.rooms.get(name)
        if room is None or room.conns:
            return
        if room.stored:
            room.compact()  # leave a compact history behind; the writer commits it
        del self.rooms[name]
        self.metrics.rooms_unloaded += 1
        log.info("unloaded room %s", name)

    def gauges(self) -> dict[str, tuple[float, str]]:
        """For /metrics, read at scrape time."""
        return {
            "rooms": (len(self.rooms), "Rooms loaded in memory."),
            "connections": (sum(len(r.conns) for r in self.rooms.values()), "Open websocket connections."),
        }

    async def close(self) -> None:
        """Flush everything; called on shutdown."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for room in list(self.rooms.values()):
            if room.stored >= 50:
                room.compact()
        await self.writer.close()
