"""RoomManager: rooms are loaded from the store on first use and unloaded when idle.

Memory holds only rooms somebody is in (plus a grace period, so a reload of the page does not
pay for a reload of the document).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from typing import Protocol

from .chat import ChatArchive
from .chatlog import ChatStore
from .history import build
from .metrics import Metrics
from .room import Room
from .settings import DocBounds
from .store import Row, Store, VersionRow
from .writer import RoomWriter

log = logging.getLogger("inhabit.rooms")


class RoomUnavailable(Exception):
    """The room cannot be loaded now (cluster mode: Redis or PostgreSQL away); try again later."""


class RoomStore(ChatStore, Protocol):
    """What the routes and the rooms ask of where rooms are kept, in either mode: `Store`
    (embedded, SQLite) or `server.cluster.snapshots.Snapshots` (cluster, PostgreSQL).
    Synchronous: called off the loop. Both also keep older chat lines (`ChatStore`)."""

    def versions(self, room: str) -> list[VersionRow]: ...
    def version(self, room: str, version_id: int) -> bytes | None: ...
    def latest_version(self, room: str) -> list[Row]: ...
    def quarantine(self, room: str, bad: list[tuple[Row, str]]) -> None: ...


class Rooms(Protocol):
    """The rooms `create_app` serves, picked once: `RoomManager` (embedded) or
    `server.cluster.rooms.ClusterRooms` (cluster)."""

    rooms: dict[str, Room]
    """The rooms in memory, by name."""

    chat_archive: ChatArchive
    """Older chat lines in the store: written in order, read by `GET /rooms/NAME/chat`."""

    @property
    def store(self) -> RoomStore: ...
    @property
    def writer(self) -> RoomWriter: ...

    async def get(self, name: str) -> Room: ...
    async def acquire(self, name: str) -> Room: ...
    def release(self, room: Room) -> None: ...
    def joined(self, room: Room) -> None: ...
    def watch(self, fn: Callable[[str, int], None]) -> None: ...
    def gauges(self) -> dict[str, tuple[float, str]]: ...
    async def close(self) -> None: ...


class RoomManager:
    """The embedded mode's `Rooms` (and the base of cluster mode's)."""

    def __init__(self, store: Store, writer: RoomWriter, metrics: Metrics, grace: float = 30.0, bounds: DocBounds | None = None) -> None:
        self.store = store
        self.writer = writer
        self.metrics = metrics
        self.grace = grace
        self.bounds = bounds or DocBounds()
        self.rooms: dict[str, Room] = {}
        self._loading: dict[str, asyncio.Future[Room]] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._watchers: list[Callable[[str, int], None]] = []
        self.chat_archive = ChatArchive(store, self.bounds.chat_kept_bytes)

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
            if self.writer.holds(name):
                await self.writer.flush()
            room = await self._load(name)
            room.chat.archive = functools.partial(self.chat_archive.keep, name)
            room.loaded()  # a room stored over its bounds is trimmed, chat first
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

    async def _load(self, name: str) -> Room:
        """Build the room from the store; a row that does not load is quarantined, and a bad
        snapshot is replaced by the newest kept version, so one bad row never costs the room."""
        rows = await asyncio.to_thread(self.store.load, name)
        doc, history, bad = build(rows)
        if any(row.kind == "snapshot" for row, _ in bad):
            fallback = await asyncio.to_thread(self.store.latest_version, name)
            if fallback:
                log.warning("room %s: its snapshot is damaged; loading from version %d", name, fallback[0].id)
                doc, history, more = build(fallback + [r for r in rows if r.kind == "update"])
                bad = [b for b in bad if b[0].kind == "snapshot"] + more
        if bad:
            await self._quarantine(name, bad)
        return Room(name, doc, self.writer, self.metrics, history, self.bounds)

    async def _quarantine(self, name: str, bad: list[tuple[Row, str]]) -> None:
        for row, error in bad:
            log.error("room %s: %s %d %s; moved to the quarantine table", name, row.kind, row.id, error)
        try:
            await asyncio.to_thread(self.store.quarantine, name, bad)
        except Exception as exc:  # cannot write now: the rows stay where they are, still skipped
            log.error("room %s: cannot quarantine %d rows: %s", name, len(bad), exc)

    async def acquire(self, name: str) -> Room:
        """The room, pinned in memory while it has connections."""
        room = await self.get(name)
        timer = self._timers.pop(name, None)
        if timer is not None:
            timer.cancel()
        return room

    def release(self, room: Room) -> None:
        """Call after `room.leave(conn)`: start the grace period if the room is now empty."""
        self._tell(room)
        if not room.conns:
            self._schedule_unload(room)

    def joined(self, room: Room) -> None:
        """Call after `room.join(conn)`."""
        self._tell(room)

    def watch(self, fn: Callable[[str, int], None]) -> None:
        """`fn(room name, open connections)` after every join and leave (plugins: `Host.watch_rooms`)."""
        self._watchers.append(fn)

    def _tell(self, room: Room) -> None:
        for fn in self._watchers:
            try:
                fn(room.name, len(room.conns))
            except Exception:
                log.exception("room watcher failed")

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
        if room.stored and not self.writer.unavailable:
            room.compact()  # leave a compact history behind; the writer commits it
        del self.rooms[name]
        room.drop_encoded()
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
            if room.stored >= 50 and not self.writer.unavailable:
                room.compact()
        await self.chat_archive.close()
        await self.writer.close()
