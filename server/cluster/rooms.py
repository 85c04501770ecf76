"""ClusterRooms: the embedded `RoomManager`, loading rooms from PostgreSQL + Redis and keeping
them in step with what other nodes append to their streams.

One reader task per node reads the streams of every room this node has loaded, in one blocking
XREAD, from the id each room's document holds up to (`positions`); what other nodes appended is
applied and forwarded to this node's connections, frame for frame. A room that cannot stay in
step (its append failed, Redis went away, it fell so far behind that entries it never read were
trimmed) is dropped: its connections are closed with 4503 and reconnect, to a room loaded
afresh, and their sync exchange restores anything the server lacks.
"""

from __future__ import annotations

import asyncio
import logging

from redis.exceptions import RedisError

from wire import protocol as p

from ..metrics import Metrics
from ..room import Room
from ..rooms import RoomManager, RoomUnavailable
from ..settings import DocBounds
from ..store import Snapshot
from .loading import LoadFailed, load_room
from .snapshots import Snapshots
from .streams import Entry, RoomStreams, sid
from .writer import StreamWriter

log = logging.getLogger("inhabit.cluster")

BLOCK_MS = 1000
"""Longest a read waits for entries (a newly loaded room wakes it at once)."""
COALESCE_S = 0.01
"""Pause after a read that returned entries, so the next returns several: under load a node
makes at most 100 reads a second, whatever its rooms' traffic (a read costs more CPU than the
entries it returns); the first entry after a quiet spell is not delayed."""


class ClusterRooms(RoomManager):
    def __init__(self, snapshots: Snapshots, writer: StreamWriter, metrics: Metrics, grace: float, bounds: DocBounds, *,
                 streams: RoomStreams, positions: dict[str, str]) -> None:
        super().__init__(snapshots, writer, metrics, grace, bounds)  # type: ignore[arg-type]  # its own `_load` reads `Snapshots`
        self.snapshots = snapshots
        self.streams = streams
        self.positions = positions
        self.cluster_writer = writer
        self.node = streams.node
        self._me = streams.node.encode()
        self.alive: set[str] = {streams.node}
        self.dropped = 0

    # loading

    async def _load(self, name: str) -> Room:
        why = self.cluster_writer.unavailable
        if why is not None:
            raise RoomUnavailable(why)
        try:
            loaded = await load_room(self.snapshots, self.streams, name)
        except (RedisError, OSError, LoadFailed) as exc:
            raise RoomUnavailable(f"cannot load the room from Redis: {exc}") from exc
        except Exception as exc:  # psycopg's errors, the pool's timeout
            raise RoomUnavailable(f"cannot load the room from PostgreSQL: {type(exc).__name__}: {exc}") from exc
        if loaded.bad:
            await self._quarantine(name, loaded.bad)
        room = Room(name, loaded.doc, self.writer, self.metrics, loaded.history, self.bounds)
        for entry in loaded.presence:
            node = entry.node.decode()
            if node != self.node and node in self.alive:  # ours are stale: the room was not loaded here
                room.remote_awareness(entry.message, entry.identity, node)
        self.positions[name] = loaded.position
        try:
            await self.streams.wake()  # the reader starts reading this room's stream from `position`
        except (RedisError, OSError):
            pass  # the reader's next round (at most BLOCK_MS away) reads it anyway
        return room

    def release(self, room: Room) -> None:
        if self.rooms.get(room.name) is room:  # a dropped room's connections leave a room no longer ours
            super().release(room)

    def _unload(self, name: str) -> None:
        super()._unload(name)
        if name not in self.rooms:
            self.positions.pop(name, None)

    # what the compactor asks of us

    def has_room(self, room: str) -> bool:
        return room in self.rooms and room in self.positions

    def encoded(self, room: str) -> tuple[Snapshot, str] | None:
        loaded = self.rooms.get(room)
        at = self.positions.get(room)
        return (loaded.take_snapshot(), at) if loaded is not None and at is not None else None

    async def load_cold(self, room: str) -> tuple[Snapshot, str]:
        loaded = await load_room(self.snapshots, self.streams, room)
        return loaded.snapshot(), loaded.position

    # staying in step

    async def read_forever(self) -> None:
        """The node's one reader: every loaded room's stream, in one blocking read."""
        backoff = 0.05
        while True:
            try:
                reply = await self.streams.read(dict(self.positions), BLOCK_MS)
            except (RedisError, OSError) as exc:
                self.drop(None, f"Redis is unavailable ({type(exc).__name__}: {exc})")
                await asyncio.sleep(backoff)
                backoff = min(2 * backoff, 1.0)
                continue
            backoff = 0.05
            for name, entries in reply:
                self._apply(name, entries)
            if reply:
                await asyncio.sleep(COALESCE_S)

    def _apply(self, name: str, entries: list[Entry]) -> None:
        room, at = self.rooms.get(name), self.positions.get(name)
        if room is None or at is None:
            return  # unloaded or dropped while we read
        if sid(entries[0].id) <= sid(at):  # reloaded while we read: skip what it holds already
            entries = [e for e in entries if sid(e.id) > sid(at)]
            if not entries:
                return
        me = self._me
        for entry in entries:
            if entry.node == me:
                continue  # applied and forwarded when our own connection sent it
            message = entry.message
            try:
                if message[0] == p.MSG_SYNC:
                    room.remote_update(message, entry.identity)
                elif message[0] == p.MSG_AWARENESS:
                    room.remote_awareness(message, entry.identity, entry.node.decode())
            except BaseException as exc:  # a Rust panic is a BaseException too
                if isinstance(exc, (KeyboardInterrupt, SystemExit, asyncio.CancelledError)):
                    raise
                # it applied on the node that committed it: our copy of the room is wrong now, and
                # must never be compacted as if it held that entry; load it afresh
                log.error("room %s: stream entry %s does not apply here (%s)", name, entry.id, exc)
                self.drop(name, "this node could not apply an edit of the room")
                return
        self.positions[name] = entries[-1].id

    def drop(self, name: str | None, why: str) -> None:
        """Stop serving a room (None: every room) from this node's memory: its connections are
        closed with 4503 and reconnect to a fresh load. For Redis failures, edits are refused
        until the health check sees Redis again."""
        if name is None:
            if self.cluster_writer.unavailable is None:
                log.error("%s: dropping every room and refusing edits until it is back", why)
            self.cluster_writer.unavailable = why
        names = list(self.rooms) if name is None else [name]
        for n in names:
            room = self.rooms.pop(n, None)
            self.positions.pop(n, None)
            timer = self._timers.pop(n, None)
            if timer is not None:
                timer.cancel()
            if room is None:
                continue
            if name is not None:
                log.error("room %s: %s; closing its connections (they reconnect)", n, why)
            self.dropped += 1
            self.metrics.rooms_unloaded += 1
            room.failed = why
            room.drop_encoded()
            for conn in list(room.conns):
                conn.close(p.Close.UNAVAILABLE, f"the server cannot save edits right now: {why}; reconnect")

    def forget_nodes(self, alive: set[str]) -> None:
        """Nodes that stopped beating: their people's presence goes from every room here."""
        self.alive = alive
        for room in self.rooms.values():
            if room.remote:
                room.forget_nodes(alive)

    async def check_marks(self) -> None:
        """A room whose stream was trimmed past what we read has lost entries for us: drop it."""
        names = list(self.positions)
        if not names:
            return
        for name, mark in zip(names, await self.streams.marks(names), strict=True):
            at = self.positions.get(name)
            if mark is not None and at is not None and sid(mark) > sid(at):
                self.drop(name, "this node fell behind the room's stream")

    def gauges(self) -> dict[str, tuple[float, str]]:
        return {**super().gauges(),
                "cluster_rooms_dropped_total": (self.dropped, "Rooms dropped from memory to stay consistent (their clients reconnected)."),
                "stream_reads_total": (self.streams.reads, "Blocking stream reads (each covers every loaded room)."),
                "stream_entries_read_total": (self.streams.entries_read, "Stream entries read (this node's own included).")}
