"""One websocket peer in a room: its bounded send queue, its request budget, its closing.

`send` never blocks; one sender task drains the queue. The queue is bounded in messages and in
bytes, so a slow or non-reading client only ever fills its own queue and is closed (for real:
its transport is aborted after a short grace) instead of holding memory or stalling the room.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Protocol

from wire import protocol as p

if TYPE_CHECKING:
    from common.settings import Settings

    from .metrics import Metrics

log = logging.getLogger("inhabit.conn")

_CLOSE = object()

CLOSE_GRACE = 2.0
"""Seconds a closing connection gets to take its close frame before its transport is aborted."""

STATE_REQUESTS = 4
"""Full-state requests (SyncStep1, QueryAwareness) one connection may burst; honest peers send one."""
STATE_REQUEST_EVERY = 15.0
"""Seconds that earn one more full-state request (so STATE_REQUESTS a minute, sustained)."""


class Transport(Protocol):
    """What a connection needs of the TCP transport under its websocket (see websocket.transport_of)."""

    def abort(self) -> None: ...
    def is_closing(self) -> bool: ...
    def pause_reading(self) -> None: ...


class Conn:
    """One websocket peer in a room. `send` never blocks; `_run` is its only sender task.

    Everything it can make the server hold is bounded: the send queue in messages AND bytes,
    its awareness ids and their states' size, how often it may ask for the full state.
    """

    __slots__ = ("ws", "transport", "identity", "role", "limit", "limit_bytes", "queued", "queue", "wake",
                 "awareness_ids", "max_ids", "max_state", "closed", "close_args", "denied", "task", "metrics",
                 "requests", "requests_at")

    def __init__(self, ws: Any, transport: Transport, identity: str, role: str, settings: Settings, metrics: Metrics) -> None:
        self.ws = ws
        self.transport = transport
        self.identity = identity  # the token's id: who may reclaim our awareness ids after we leave
        self.role = role
        self.limit = settings.send_queue
        self.limit_bytes = settings.send_queue_bytes
        self.queued = 0  # bytes in `queue` (the one being written is no longer counted)
        self.queue: deque[Any] = deque()
        self.wake = asyncio.Event()
        self.awareness_ids: set[int] = set()
        self.max_ids = settings.awareness_ids
        self.max_state = settings.awareness_bytes
        self.closed = False
        self.close_args: tuple[int, str] | None = None
        self.denied = False
        self.task: asyncio.Task[None] | None = None
        self.metrics = metrics
        self.requests = float(STATE_REQUESTS)  # a token bucket of full-state requests
        self.requests_at = time.monotonic()

    def send(self, msg: bytes) -> None:
        """Queue `msg`; close the connection as too slow if its backlog outgrows the bounds.

        One message is always accepted into an empty queue (a full-state reply may be larger than
        the bound); a BACKLOG past `send_queue_bytes` or `send_queue` messages is not.
        """
        if self.closed:
            return
        queue = self.queue
        queued = self.queued + len(msg)
        if (queued > self.limit_bytes and queue) or len(queue) >= self.limit:
            self.metrics.slow_closed += 1
            queue.clear()
            self.queued = 0
            self.close(p.Close.TOO_SLOW, "send queue overflow: client too slow to keep up, reconnect")
            return
        self.queued = queued
        queue.append(msg)
        self.wake.set()

    def close(self, code: int, reason: str) -> None:
        """Close after what is already queued (so a PermissionDenied or reason still arrives),
        and abort the transport CLOSE_GRACE later whatever happens: a peer that does not read
        would otherwise keep its socket and buffers forever (uvicorn's close waits for a drain)."""
        if self.closed:
            return
        self.closed = True
        self.close_args = (code, reason.encode()[:123].decode(errors="ignore"))
        self.queue.append(_CLOSE)
        self.wake.set()
        self.abort_later()

    def abort_later(self) -> None:
        """Drop the TCP connection CLOSE_GRACE from now (a no-op if it closed cleanly by then)."""
        asyncio.get_running_loop().call_later(CLOSE_GRACE, self.transport.abort)

    def may_request_state(self) -> bool:
        """Spend one full-state request; False once the connection asks more than its budget."""
        now = time.monotonic()
        self.requests = min(STATE_REQUESTS, self.requests + (now - self.requests_at) / STATE_REQUEST_EVERY)
        self.requests_at = now
        if self.requests < 1:
            return False
        self.requests -= 1
        return True

    def policy(self, reason: str) -> None:
        """Close for crossing a per-connection bound (1008, not worth retrying as is)."""
        self.metrics.policy_closed += 1
        self.close(p.Close.POLICY, reason)

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def finish(self, peer_left: bool) -> None:
        """Stop the sender and drop the backlog; never waits on a dead peer past CLOSE_GRACE.

        If we are the ones closing, the close frame gets CLOSE_GRACE to go out (`close`
        schedules the abort that follows it); if the peer left, there is nothing to send."""
        task = self.task
        if peer_left:
            if self.close_args is None:  # the peer's close may still wait on a drain that never comes
                self.abort_later()
        else:
            self.close(p.Close.NORMAL, "")
            if task is not None:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(CLOSE_GRACE):
                        await asyncio.shield(task)
        self.closed = True
        if task is not None:
            task.cancel()
        self.queue.clear()
        self.queued = 0

    async def _run(self) -> None:
        ws, queue, wake = self.ws, self.queue, self.wake
        send = ws._send  # raw ASGI send: skips Starlette's per-call state checks on the hot path
        try:
            while True:
                if not queue:
                    wake.clear()
                    await wake.wait()
                    continue
                msg = queue.popleft()
                if msg is _CLOSE:
                    code, reason = self.close_args or (p.Close.NORMAL, "")
                    await ws.close(code, reason)
                    # uvicorn now reads and discards whatever the peer sends, unthrottled, until
                    # the transport closes: a flooder would keep the loop busy parsing it
                    self.transport.pause_reading()
                    return
                self.queued -= len(msg)
                await send({"type": "websocket.send", "bytes": msg})
        except Exception:  # peer gone mid-send: the receive loop will see the disconnect
            self.closed = True
            queue.clear()
            self.queued = 0
