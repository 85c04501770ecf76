"""HTTP reads that behave like the websocket: bounded per link, streamed, cut when not read.

Why: `GET /rooms/NAME/strokes` encoded the whole room into one body per request and handed it
to the transport at once, so a client that never read held the room's size in the server's
memory for as long as it kept the socket open (12 such requests on a 60 MB room: +605 MB), with
no rate limit and no timeout. Now:

- the answer is the room's strokes already encoded (`server.encoded`), written in `CHUNK` byte
  pieces; uvicorn waits for the transport's buffer to drain (its flow control, ~64 KiB) before it
  writes the next piece, so one connection holds at most ~`CHUNK` + 64 KiB in flight;
- a piece the client does not take within `--http-write-timeout-s` cuts the connection (its
  transport is aborted: uvicorn's close would wait for a drain that never comes);
- each link (its token id; its address when auth is off) may start `--http-reads-per-minute`
  reads and have `--http-read-concurrency` in flight (`ReadGate`; more: 429 with Retry-After);
- `?limit=N&after=CURSOR` pages it (`next` in the answer is the cursor of the next page).

The bucket is written here rather than taken from a library: it is ten lines of GCRA keyed by
link, with the concurrency count beside it, and the server's other buckets (`RecvBudget`) are
written the same way; counting per node (a cluster's nodes each keep their own).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from pydantic_core import to_json
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from common.access import OPEN, TokenInfo, room_of
from common.http import Refusal

from .encoded import EncodedStrokes, Position

if TYPE_CHECKING:
    from .conn import Transport
    from .metrics import Metrics
    from .settings import HttpReads

log = logging.getLogger("inhabit.reads")

CHUNK = 64 * 1024
"""Bytes written per piece of an answer: with the transport's own buffer, what one connection holds."""
MAX_LIMIT = 10_000
"""Strokes one page may ask for (`?limit=`)."""
KEYS_KEPT = 10_000
"""Links remembered by the gate before those with a full bucket and nothing in flight are forgotten."""


class ReadGate:
    """Per link: a GCRA bucket of `per_minute` reads (bursts up to a minute's worth) and a count
    of reads in flight, at most `concurrency`. `admit(link)` -> the release, or a 429 `Refusal`."""

    def __init__(self, limits: HttpReads, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self.clock = clock
        self.interval = 60.0 / limits.per_minute
        self.slack = 60.0 - self.interval
        self.tat: dict[str, float] = {}  # link -> "theoretical arrival time" of its next read
        self.busy: dict[str, int] = {}  # link -> reads in flight

    def admit(self, link: str) -> Callable[[], None]:
        busy = self.busy.get(link, 0)
        if busy >= self.limits.concurrency:
            raise Refusal(429, f"this link has {busy} reads in flight (at most {self.limits.concurrency}); "
                          "finish reading them first", retry_after=1)
        now = self.clock()
        tat = max(self.tat.get(link, now), now)
        if tat - now > self.slack:
            raise Refusal(429, f"more than {self.limits.per_minute} reads a minute from this link", retry_after=tat - now - self.slack)
        if len(self.tat) >= KEYS_KEPT:
            self._forget(now)
        self.tat[link] = tat + self.interval
        self.busy[link] = busy + 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                left = self.busy.get(link, 1) - 1
                if left > 0:
                    self.busy[link] = left
                else:
                    self.busy.pop(link, None)

        return release

    def _forget(self, now: float) -> None:
        for link in [k for k, t in self.tat.items() if t <= now and k not in self.busy]:
            del self.tat[link]


def link_of(request: Request, who: TokenInfo) -> str:
    """Whose budget a read takes from: the token's id, or the client's address when auth is off."""
    if who is OPEN:
        return f"addr:{request.client.host if request.client else '?'}"
    return f"link:{who.id}"


def transport_under(receive: Receive) -> Transport | None:
    """The TCP transport under an ASGI request, to abort a client that stopped reading (None if
    the server is not uvicorn). As `server.websocket.transport_of`: uvicorn's `receive` is a
    bound method of the request cycle, which holds the transport; ASGI itself has no abort."""
    transport = getattr(getattr(receive, "__self__", None), "transport", None)
    if all(callable(getattr(transport, m, None)) for m in ("abort", "is_closing", "get_extra_info")):
        return transport
    return None


def reset(transport: Transport) -> None:
    """Abort with a TCP reset: a plain close or abort leaves what the kernel still holds for the
    client (megabytes) to be sent, to a client that does not read, for minutes."""
    sock = transport.get_extra_info("socket")
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


class BoundedStream(Response):
    """An answer written piece by piece, each piece within `write_timeout_s` or the connection is
    cut; `done` is called once however it ends (the link's read is no longer in flight)."""

    def __init__(self, pieces: Iterator[bytes], write_timeout_s: float, done: Callable[[], None], metrics: Metrics,
                 media_type: str = "application/json") -> None:
        self.pieces = pieces
        self.write_timeout_s = write_timeout_s
        self.done = done
        self.metrics = metrics
        self.status_code = 200
        self.media_type = media_type
        self.background = None
        self.init_headers(None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        transport = transport_under(receive)
        try:
            async with asyncio.timeout(self.write_timeout_s):
                await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            for piece in self.pieces:
                if transport is not None and transport.is_closing():
                    return  # the client left: stop encoding for nobody
                async with asyncio.timeout(self.write_timeout_s):  # uvicorn drains the previous piece first
                    await send({"type": "http.response.body", "body": piece, "more_body": True})
            async with asyncio.timeout(self.write_timeout_s):  # the last piece is waited for too
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except TimeoutError:
            self.metrics.http_reads_cut += 1
            log.info("cut %s %s: the client took nothing for %.0f s", scope.get("method"), scope.get("path"), self.write_timeout_s)
            if transport is not None:
                reset(transport)
                await asyncio.sleep(0)  # uvicorn hears of it (connection_lost) before we return
        finally:
            self.pieces = iter(())
            self.done()


def strokes_body(room: str, view: EncodedStrokes, after: Position | None = None, limit: int | None = None) -> Iterator[bytes]:
    """`StrokesResponse` as it would be dumped (`exclude_none`), byte for byte, in pieces of about
    CHUNK bytes, read from `view` as it goes (never a copy of the room); with `limit`, one page
    and, if more follow, `next`: the cursor to pass as `after`."""
    pending: list[bytes] = [b'{"room":', to_json(room), b',"strokes":[']
    size = sum(map(len, pending))
    n = 0
    last: Position | None = None
    more = False
    for pos, data in view.after(after):
        if limit is not None and n == limit:
            more = True
            break
        if n:
            pending.append(b",")
            size += 1
        n += 1
        last = pos
        if size + len(data) < CHUNK:
            pending.append(data)
            size += len(data)
            continue
        # whole pieces out, sliced from the view's bytes (a long stroke spans several), the rest starts the next
        at = CHUNK - size
        pending.append(data[:at])
        yield b"".join(pending)
        while len(data) - at >= CHUNK:
            yield data[at:at + CHUNK]
            at += CHUNK
        pending = [data[at:]]
        size = len(data) - at
    pending.append(b"]")
    if more and last is not None:
        pending.append(b',"next":' + to_json(cursor_of(last)))
    pending.append(b"}")
    yield b"".join(pending)


def cursor_of(pos: Position) -> str:
    """A page's `next`: the last stroke's time and key."""
    return f"{pos[0]}:{pos[2]}"


def position_after(view: EncodedStrokes, after: str) -> Position:
    """Where `?after=` points: a stroke's id (of a stroke still in the room), or a page's `next`."""
    pos = view.position_of(after)
    if pos is not None:
        return pos
    t, _, key = after.partition(":")
    with contextlib.suppress(ValueError):
        if key:
            return (int(t), key, key)
    raise Refusal(400, "after must be the id of a stroke in the room or a page's `next`")


def page_of(request: Request) -> int | None:
    """`?limit=N` (1..MAX_LIMIT), or None for every stroke."""
    text = request.query_params.get("limit")
    if text is None:
        return None
    try:
        limit = int(text)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIMIT:
        raise Refusal(400, f"limit must be a whole number from 1 to {MAX_LIMIT}")
    return limit


async def strokes(request: Request) -> Response:
    """`GET /rooms/{name}/strokes[?limit=N&after=CURSOR]`: `StrokesResponse`, streamed (see the module)."""
    name, who = room_of(request)
    limit = page_of(request)
    state = request.app.state
    release = state.reads.admit(link_of(request, who))
    try:
        room = await state.rooms.get(name)
        view = await room.encoded()
        after = request.query_params.get("after")
        pieces = strokes_body(name, view, position_after(view, after) if after else None, limit)
    except BaseException:
        release()
        raise
    return BoundedStream(pieces, state.settings.reads.write_timeout_s, release, state.metrics)
