"""A room's chat, bounded so that it can never wall the room up.

Why: chat lines live in the room's document (the root `messages` array), so 8,000-character
lines at 2 MB/s once filled a room to its size limit in 36 s, after which nobody could draw,
even after a restart. Three bounds, applied by `server.room.Room` where a peer's update is
applied (next to `server.attribution`, which already knows which lines an update inserted):

- a rate per link: the bytes of chat lines one link may add to a room per minute
  (`--chat-bytes-per-minute`, a token bucket holding a minute's worth). Lines past it are
  removed in a server transaction merged into the sender's own update, so nobody else ever sees
  them and the sender's page gets the removal (the CRDT way: an applied update cannot be taken
  back, but its insertions can be deleted before they are forwarded). The server's own peers
  (hosted agent, MCP sessions, behaviours) are bounded by their prompt and run limits instead;
- a size for the document's chat: past `--chat-lines` lines or `--chat-doc-bytes` bytes, the
  oldest lines are deleted (a server transaction, like any edit) down to three quarters of both,
  so trims are rare, and kept in the store (`server.chatlog`, `GET /rooms/NAME/chat`);
- a room at its size limit is freed by its chat first: before an edit is refused for size, and
  when a room that is over loads, its chat is trimmed (to its bounds, then all of it) and the
  document compacted (`Room.make_space`).

Cluster mode: the node that accepts a line counts it against its link and trims; other nodes
only count the bytes (`server.chatlog` stores a line once even if two nodes trim it).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pycrdt import Array, Doc

from canvas.schema import MESSAGES

from .chatlog import ChatRow, ChatStore

if TYPE_CHECKING:
    from .settings import DocBounds

log = logging.getLogger("inhabit.chat")

BUCKETS_KEPT = 1024
"""Links' buckets a room keeps before forgetting the full ones (a full bucket is as good as none)."""

Archived = list[tuple[str, str]]
"""Lines let go by a document: (message id, JSON), oldest first."""


def line_bytes(line: Any) -> int:
    """What a chat line costs the document, near enough: its JSON in UTF-8."""
    return len(json.dumps(line, separators=(",", ":"), ensure_ascii=False).encode())


def transact(doc: Doc, change: Callable[[], object]) -> bytes | None:
    """Run `change` in one server transaction of `doc`; its update (None if it changed nothing)."""
    updates: list[bytes] = []
    sub = doc.observe(lambda event: updates.append(event.update))
    try:
        with doc.transaction():
            change()
    finally:
        doc.unobserve(sub)
    return updates[0] if updates else None


class Bucket:
    """A token bucket of bytes: `capacity` at most, refilled at `capacity` a minute."""

    __slots__ = ("capacity", "level", "at")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.level = float(capacity)
        self.at = time.monotonic()

    def refill(self) -> float:
        now = time.monotonic()
        self.level = min(self.capacity, self.level + (now - self.at) * self.capacity / 60.0)
        self.at = now
        return self.level

    def take(self, n: int) -> bool:
        if self.refill() < n:
            return False
        self.level -= n
        return True


class RoomChat:
    """One room's chat bounds: the links' buckets and the document's running chat size."""

    def __init__(self, bounds: DocBounds, doc: Doc) -> None:
        self.bounds = bounds
        self.buckets: dict[str, Bucket] = {}
        self.bytes = sum(line_bytes(line) for line in doc.get(MESSAGES, type=Array))
        """Bytes of the document's chat lines, estimated from above between trims."""
        self.archive: Callable[[Archived], None] = lambda lines: None
        """Where trimmed lines go (`ChatArchive.keep` for this room, set by the rooms)."""

    def admit(self, link: str, inserted: list[tuple[int, Any]]) -> list[tuple[int, str]]:
        """Charge the lines a link's update inserted ((index, line)) to its bucket; the ones past
        it, as (index, id), to remove."""
        bucket = self.buckets.get(link)
        if bucket is None:
            bucket = self.buckets[link] = Bucket(self.bounds.chat_bytes_per_minute)
            if len(self.buckets) > BUCKETS_KEPT:
                self._forget_full()
        over: list[tuple[int, str]] = []
        for at, line in inserted:
            size = line_bytes(line)
            if bucket.take(size):
                self.bytes += size
            else:
                over.append((at, line.get("id", "") if isinstance(line, dict) else ""))
        return over

    def count(self, inserted: list[tuple[int, Any]]) -> None:
        """Lines inserted by the server or another node: they count towards the document's size."""
        self.bytes += sum(line_bytes(line) for _, line in inserted)

    def _forget_full(self) -> None:
        for key in [k for k, b in self.buckets.items() if b.refill() >= b.capacity]:
            del self.buckets[key]

    def due(self, doc: Doc) -> bool:
        """Whether the document holds more chat than its bounds."""
        b = self.bounds
        return self.bytes > b.chat_doc_bytes or len(doc.get(MESSAGES, type=Array)) > b.chat_lines

    def trim(self, doc: Doc, keep_lines: int, keep_bytes: int) -> Archived:
        """Delete the oldest lines (call inside a transaction) until at most `keep_lines` lines
        of `keep_bytes` bytes are left; the deleted lines, for the archive."""
        array = doc.get(MESSAGES, type=Array)
        lines = list(array)
        sizes = [line_bytes(line) for line in lines]
        total, drop = sum(sizes), max(0, len(lines) - keep_lines)
        total -= sum(sizes[:drop])
        while total > keep_bytes and drop < len(lines):
            total -= sizes[drop]
            drop += 1
        self.bytes = total
        if drop:
            del array[0:drop]
        return [(str(line.get("id", "")), json.dumps(line, separators=(",", ":"), ensure_ascii=False))
                for line in lines[:drop] if isinstance(line, dict)]


def remove_lines(doc: Doc, lines: list[tuple[int, str]]) -> bytes | None:
    """Delete the lines (index, id) in one server transaction; its update. The index is where
    the update put the line; if the line is not there any more, it is looked up by id."""
    array = doc.get(MESSAGES, type=Array)

    def change() -> None:
        for at, line_id in sorted(lines, reverse=True):
            if at < len(array) and _id_of(array[at]) == line_id:
                del array[at]
                continue
            for i in range(len(array) - 1, -1, -1):
                if _id_of(array[i]) == line_id:
                    del array[i]
                    break
    return transact(doc, change)


def _id_of(line: Any) -> str:
    return str(line.get("id", "")) if isinstance(line, dict) else ""


class ChatArchive:
    """Writes trimmed lines to the store, off the event loop and in order (one write at a time:
    an `asyncio.Lock` is first come, first served), so a room's log keeps the document's order;
    a read or a clear first waits for the writes queued before it."""

    def __init__(self, store: ChatStore, keep_bytes: int) -> None:
        self.store = store
        self.keep_bytes = keep_bytes
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()

    def keep(self, room: str, lines: Archived) -> None:
        """Queue `lines` of `room` for the store (called on the loop, returns at once)."""
        if not lines:
            return
        task = asyncio.get_running_loop().create_task(self._keep(room, lines))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _keep(self, room: str, lines: Archived) -> None:
        async with self._lock:
            try:
                await asyncio.to_thread(self.store.archive_chat, room, lines, self.keep_bytes)
            except Exception as exc:  # the store cannot write now: these lines are lost, the room goes on
                log.error("room %s: could not keep %d older chat lines: %s", room, len(lines), exc)

    async def page(self, room: str, before: int | None, limit: int) -> list[ChatRow]:
        await self.flush()  # lines trimmed before the request are in it
        return await asyncio.to_thread(self.store.chat_page, room, before, limit)

    async def clear(self, room: str) -> None:
        await self.flush()  # a trim queued before the clear does not come back after it
        async with self._lock:
            await asyncio.to_thread(self.store.clear_chat, room)

    async def flush(self) -> None:
        """Wait for the lines queued so far."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        await self.flush()
