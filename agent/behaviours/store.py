"""Behaviours in memory, written behind to `BehaviourRecords` (`<data>/behaviours.sqlite3`, or PostgreSQL).

Why every behaviour is in memory: a behaviour is small and bounded (code, state of at most
`state_bytes`, at most `per_room` per room), and the server must know at start-up which rooms
have schedules to keep and which need the agent as soon as someone joins. Firing records are
not: they are written behind and read back from the database when someone asks (the last one
is kept on its behaviour as a summary).

Writes are gathered over one event-loop tick and committed on one writer thread, never on the
loop (`common.writebehind`); `flush` waits for them (routes flush before reading firings back).

Shared records (cluster mode, PostgreSQL): behaviours fire only on the node holding
their room's agent lease, so a node keeps in memory only the rooms it holds: `adopt` loads a
room when the node takes its lease, `drop` forgets it when the node lets go. Other rooms are
read through (`view`), for the routes that any node answers.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
from collections.abc import Iterator

from pydantic import ValidationError

from agent.behaviours.model import Behaviour, Firing
from agent.behaviours.records import Batch, BehaviourRecords
from agent.contract.events import every_of
from agent.runs.store import dump_json
from common.writebehind import WriteBehind

log = logging.getLogger("inhabit.agent")


class BehaviourStore:
    """The server's behaviours by room and id; durable through `db`."""

    def __init__(self, db: BehaviourRecords) -> None:
        self.db = db
        self.shared = db.shared
        self._rooms: dict[str, dict[str, Behaviour]] = {}
        self._held: set[str] = set()  # shared records: the rooms adopted (in memory, ours to change)
        self._batch = Batch()
        self._writer = WriteBehind(self._take, self.db.write, name="behaviours", describe=_describe, log=log)
        for b in [] if self.shared else _parse(db.load()):
            self._rooms.setdefault(b.room, {})[b.id] = b

    # rooms held (shared records) ---------------------------------------------------------

    def holds(self, room: str) -> bool:
        """Whether `room`'s behaviours are in memory here (always, unless shared)."""
        return not self.shared or room in self._held

    async def adopt(self, room: str) -> None:
        """Shared records: this node took `room`'s agent; its behaviours are ours from now."""
        if self.holds(room):
            return
        await self.flush()
        loaded = _parse(await asyncio.to_thread(self.db.load_room, room))
        if room not in self._held:
            self._held.add(room)
            self._rooms[room] = {b.id: b for b in loaded}
            if not self._rooms[room]:
                del self._rooms[room]

    async def drop(self, room: str) -> None:
        """Shared records: another node may take `room` now: what is pending is written, and
        the room leaves memory."""
        if not self.shared or room not in self._held:
            return
        self._held.discard(room)
        self._rooms.pop(room, None)
        await self.flush()

    async def view(self, room: str) -> list[Behaviour]:
        """The room's behaviours, wherever they are held."""
        if self.holds(room):
            return self.list(room)
        return _parse(await asyncio.to_thread(self.db.load_room, room))

    async def scheduled_rooms(self) -> list[str]:
        return await asyncio.to_thread(self.db.scheduled_rooms)

    def scheduled(self, room: str) -> bool:
        """Whether a behaviour of `room` (held here) is active on a schedule."""
        return any(b.status == "active" and every_of(b.on) is not None for b in self.list(room))

    # reading -------------------------------------------------------------------------

    def list(self, room: str) -> list[Behaviour]:
        return list(self._rooms.get(room, {}).values())

    def get(self, room: str, bid: str) -> Behaviour | None:
        return self._rooms.get(room, {}).get(bid)

    def find(self, room: str, id_or_name: str) -> Behaviour | None:
        rooms = self._rooms.get(room, {})
        return rooms.get(id_or_name) or next((b for b in rooms.values() if b.name == id_or_name), None)

    def active(self) -> Iterator[Behaviour]:
        for behaviours in self._rooms.values():
            yield from (b for b in behaviours.values() if b.status == "active")

    def __len__(self) -> int:
        return sum(len(r) for r in self._rooms.values())

    # writing -------------------------------------------------------------------------

    def save(self, b: Behaviour) -> None:
        """Add or update `b` (persisted soon, off the loop)."""
        if self.holds(b.room):  # else a firing that ended after its room was let go: written, not kept
            self._rooms.setdefault(b.room, {})[b.id] = b
        self._batch.removed.discard(b.id)
        self._batch.behaviours[b.id] = (b.room, b.status, every_of(b.on), dump_json(b))
        self._schedule()

    def save_code(self, b: Behaviour) -> None:
        """Keep the code of `b`'s current version (firings of it replay against it)."""
        self._batch.versions.append((b.id, b.version, b.code))
        self._schedule()

    def remove(self, b: Behaviour) -> None:
        room = self._rooms.get(b.room, {})
        room.pop(b.id, None)
        if not room:
            self._rooms.pop(b.room, None)
        self._batch.behaviours.pop(b.id, None)
        self._batch.firings = {k: v for k, v in self._batch.firings.items() if v[0] != b.id}
        self._batch.removed.add(b.id)
        self._schedule()

    def save_firing(self, f: Firing) -> None:
        if f.behaviour in self._batch.removed:
            return
        self._batch.firings[f.id] = (f.behaviour, f.version, dump_json(f))
        self._schedule()

    def save_seen(self, room: str, ids: builtins.list[str]) -> None:  # `list` here is the method below
        """The strokes the room's behaviours have seen, as the agent leaves the room."""
        self._batch.seen[room] = "\n".join(ids)
        self._schedule()

    def forget_seen(self, room: str) -> None:
        """The agent is back: what it had seen is used (`seen` says None until it leaves again)."""
        self._batch.seen[room] = None
        self._schedule()

    async def seen(self, room: str) -> set[str] | None:
        """The strokes seen when the agent last left `room` (None: it never did)."""
        await self.flush()
        text = await asyncio.to_thread(self.db.seen, room)
        return None if text is None else set(text.split("\n")) - {""}

    async def firings(self, b: Behaviour, limit: int) -> builtins.list[Firing]:
        """`b`'s newest firing records, newest first."""
        await self.flush()
        return await asyncio.to_thread(self._firings, b.id, limit)

    def _firings(self, bid: str, limit: int) -> builtins.list[Firing]:
        """Read and decode on a worker thread: never on the loop."""
        return [f for f in (_parse_firing(r) for r in self.db.firings(bid, limit)) if f is not None]

    async def firing(self, firing_id: str) -> Firing | None:
        await self.flush()
        return await asyncio.to_thread(self._firing, firing_id)

    def _firing(self, firing_id: str) -> Firing | None:
        row = self.db.firing(firing_id)
        return _parse_firing(row) if row else None

    async def code(self, b: Behaviour, version: int) -> str | None:
        if version == b.version:
            return b.code
        await self.flush()
        return await asyncio.to_thread(self.db.code, b.id, version)

    # the writer ----------------------------------------------------------------------

    def _schedule(self) -> None:
        self._writer.schedule()

    def _take(self) -> Batch | None:
        if not self._batch:
            return None
        batch, self._batch = self._batch, Batch()
        return batch

    async def flush(self) -> None:
        """Wait until everything saved so far is written."""
        await self._writer.flush_async()

    def close(self) -> None:
        if self._writer.closed:
            return
        self._writer.close()
        self.db.close()


def _describe(batch: Batch) -> str:
    return f"behaviours ({len(batch.behaviours)}) and firings ({len(batch.firings)})"


def _parse(rows: list[str]) -> list[Behaviour]:
    out = []
    for data in rows:
        try:
            out.append(Behaviour.model_validate_json(data))
        except (ValidationError, ValueError):
            log.warning("skipping an unreadable behaviour record")
    return out


def _parse_firing(data: str) -> Firing | None:
    try:
        return Firing.model_validate_json(data)
    except (ValidationError, ValueError):
        log.warning("skipping an unreadable firing record")
        return None
