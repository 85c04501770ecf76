"""One copy of a room per process for all the MCP sessions in it: a refcounted registry of
shared readers.

Why: each MCP session used to hold its own websocket peer with its own full copy of the room
(~135 MB in a 150-stroke x 10,000-point room) and parsed the whole room on every `execute`
snapshot and `view`. Here the sessions of a room on this node read one `RoomView` kept by one
read-only peer of the server's (invisible: it never announces a presence), opened by the first
session and closed when the last one leaves.

Each session still has its own connection for what must be its own: its presence and cursor,
and the authority of its link (the server checks and attributes a session's writes by the
connection it sends them on). A read-only session's connection carries no copy of the room at
all (`CanvasClient(document=False)`); an edit session's connection keeps the document its
writes are made in (Yjs updates need the items they follow), but it reads from the shared view
too, so it never parses the room either.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from agent.contract.room_view import RoomView
from wire.client import CanvasClient

log = logging.getLogger("inhabit.mcp")

READER_NAME = "mcp-reader"


@dataclass
class _Entry:
    users: int = 0
    opening: asyncio.Task[tuple[CanvasClient, RoomView]] | None = None
    reader: CanvasClient | None = None
    view: RoomView | None = None
    closing: set[asyncio.Task[None]] = field(default_factory=set)


class SharedRooms:
    """`await acquire(room)` -> the room's shared `RoomView` (joining it on first use);
    `release(room)` once per acquire (the last one closes the reader)."""

    def __init__(self, ws_base: str, token_for: Callable[[str], str | None]) -> None:
        """`token_for(room)`: a view token the reader connects with (None with auth off)."""
        self.ws_base = ws_base
        self._token_for = token_for
        self._rooms: dict[str, _Entry] = {}

    def __len__(self) -> int:
        return sum(1 for e in self._rooms.values() if e.view is not None)

    async def acquire(self, room: str) -> RoomView:
        entry = self._rooms.setdefault(room, _Entry())
        entry.users += 1
        try:
            if entry.view is not None:
                return entry.view
            if entry.opening is None or entry.opening.done():
                entry.opening = asyncio.create_task(self._open(room))
            reader, view = await asyncio.shield(entry.opening)
            if entry.view is None:
                entry.reader, entry.view = reader, view
            return entry.view
        except BaseException:
            self.release(room)
            raise

    def release(self, room: str) -> None:
        entry = self._rooms.get(room)
        if entry is None:
            return
        entry.users -= 1
        if entry.users > 0:
            return
        del self._rooms[room]
        if entry.view is not None:
            entry.view.close()
        if entry.reader is not None:
            task = asyncio.get_running_loop().create_task(entry.reader.close())
            _closing.add(task)
            task.add_done_callback(_closing.discard)
        elif entry.opening is not None:  # still joining: leave once joined
            entry.opening.add_done_callback(_drop)

    async def _open(self, room: str) -> tuple[CanvasClient, RoomView]:
        reader = await CanvasClient.connect(self.ws_base, room, token=self._token_for(room), name=READER_NAME, kind="agent",
                                            presence=False)
        try:
            return reader, await RoomView.load(reader.doc)
        except BaseException:
            await reader.close()
            raise

    async def close(self) -> None:
        for room in list(self._rooms):
            entry = self._rooms.pop(room)
            if entry.view is not None:
                entry.view.close()
            if entry.reader is not None:
                with contextlib.suppress(Exception):
                    await entry.reader.close()


def _drop(task: asyncio.Task[tuple[CanvasClient, RoomView]]) -> None:
    """A reader that finished joining after its last user left leaves at once."""
    if not task.cancelled() and task.exception() is None:
        reader, view = task.result()
        view.close()
        closing = asyncio.get_running_loop().create_task(reader.close())
        _closing.add(closing)
        closing.add_done_callback(_closing.discard)


_closing: set[asyncio.Task[None]] = set()
"""Readers on their way out (held so their tasks are not collected mid-close)."""
