"""Loading a room in cluster mode: its snapshot from PostgreSQL, then its stream from where the
snapshot ends (for a node that joins the room, and for compacting a room nobody has loaded).

Why the snapshot first and the trim mark: a compaction may store a newer snapshot and trim the
stream between our two reads. Every trim raises the room's trim mark (atomically with the
XTRIM), and the entries are read together with the mark (MULTI), so "mark <= the id our
snapshot covers" proves nothing we need was trimmed; otherwise a newer snapshot exists (it was
committed before the trim) and we read again.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from pycrdt import Doc, Map

from canvas.schema import STROKES
from wire import protocol as p

from ..history import History, build
from ..store import Row, Snapshot
from .snapshots import Snapshots
from .streams import Entry, RoomStreams, Trimmed

log = logging.getLogger("inhabit.cluster")

TRIES = 5


class LoadFailed(Exception):
    """The room kept being compacted under us (or its data is unreadable): try again later."""


@dataclass
class Loaded:
    doc: Doc
    history: History
    position: str
    """The id of the last stream entry the document holds (where reading goes on)."""
    presence: list[Entry] = field(default_factory=list)
    """Awareness entries replayed (the presence of people on other nodes)."""
    bad: list[tuple[Row, str]] = field(default_factory=list)

    def snapshot(self) -> Snapshot:
        return Snapshot(self.doc.get_update(), len(self.doc.get(STROKES, type=Map)))


async def load_room(snapshots: Snapshots, streams: RoomStreams, room: str) -> Loaded:
    """The room's document as of the end of its stream. Raises LoadFailed, or the Redis /
    PostgreSQL error that stopped it."""
    for _ in range(TRIES):
        snap, covers = await asyncio.to_thread(snapshots.load, room)
        try:
            entries = await streams.replay(room, covers)
        except Trimmed:
            continue  # a compaction went by: its snapshot covers what was trimmed
        updates = [Row("update", i, p.decode_sync(e.message)[1]) for i, e in enumerate(entries) if e.message[0] == p.MSG_SYNC]
        doc, history, bad = build(([snap] if snap else []) + updates)
        if any(row.kind == "snapshot" for row, _ in bad):
            fallback = await asyncio.to_thread(snapshots.latest_version, room)
            log.error("room %s: its snapshot is damaged; loading from its newest version%s", room, "" if fallback else " (none: from the stream alone)")
            doc, history, more = build(fallback + updates)
            bad = [b for b in bad if b[0].kind == "snapshot"] + more
        presence = [e for e in entries if e.message[0] == p.MSG_AWARENESS]
        return Loaded(doc, history, entries[-1].id if entries else covers, presence, bad)
    raise LoadFailed(f"room {room} was compacted {TRIES} times while loading")
