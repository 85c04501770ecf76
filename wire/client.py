"""CanvasClient: a headless peer (agents, tests, scripts) speaking y-websocket to a room.

It holds its own pycrdt Doc, so reads are local and instant; local transactions on `.doc`
are sent to the server as updates, remote updates are applied as they arrive. It reconnects
by itself (the SyncStep1/SyncStep2 exchange on reconnect carries edits made while offline),
except after refusals that would only repeat (bad token, bad input, oversized message).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections import deque
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import websockets
from pycrdt import Awareness

from canvas import CanvasDoc

from . import protocol as p

log = logging.getLogger("inhabit.client")



class ClientError(RuntimeError):
    """The server refused us; `code` and `reason` come from its close frame."""

    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"connection refused ({code}): {reason}")
        self.code = code
        self.reason = reason


def _call(fn: Callable[..., Any], arg: Any) -> Any:
    """Call `fn(arg)` or `fn()`, whichever it accepts (predicates and callbacks may ignore the doc)."""
    try:
        params = inspect.signature(fn).parameters
        takes = any(x.kind in (x.POSITIONAL_ONLY, x.POSITIONAL_OR_KEYWORD, x.VAR_POSITIONAL) for x in params.values())
    except (TypeError, ValueError):
        takes = True
    return fn(arg) if takes else fn()


class CanvasClient:
    def __init__(self, url: str, user: dict[str, Any], reconnect: bool = True, presence: bool = True,
                 headers: dict[str, str] | None = None, document: bool = True) -> None:
        self.url = url
        self.document = document
        """False: a presence-only peer (its reads come from elsewhere): it never asks for the room's
        state, drops the updates it is sent and keeps no copy of the room; `.doc` stays empty."""
        self.headers = headers or {}  # sent with every (re)connect: e.g. a server peer's credential
        self._announced = presence  # whether peers may see us (else: from the first set_awareness on)
        self.doc = CanvasDoc()
        self._ydoc = self.doc.doc
        self._aw = Awareness(self._ydoc)
        self._aw.set_local_state({"user": user, "cursor": None, "drawing": None})
        self._aw.observe(self._on_awareness)
        self._ydoc.observe(self._on_doc)
        self.reconnect = reconnect
        self.synced = asyncio.Event()
        self.read_only: str | None = None
        """The server's PermissionDenied reason, once it has told us we cannot write."""
        self.error: ClientError | None = None
        self._failed = asyncio.Event()
        self._ws: Any = None
        self._applying = False
        self._out: deque[bytes] = deque()
        self._out_wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._sending = False
        self._changed = asyncio.Event()
        self._callbacks: list[Callable[..., Any]] = []
        self._presence: list[Callable[[list[dict[str, Any]], list[dict[str, Any]]], None]] = []
        self._presence_ids: list[Callable[[dict[int, dict[str, Any]], dict[int, dict[str, Any]]], None]] = []
        self._known: dict[int, dict[str, Any]] = {}  # others' last awareness states, to say who left
        self._notify_scheduled = False
        self._closing = False
        self._tasks: list[asyncio.Task[Any]] = []

    @classmethod
    async def connect(cls, ws_base: str, room: str, token: str | None = None, name: str = "python",
                      kind: str = "human", color: str = "#3b82f6", timeout: float = 10.0,
                      reconnect: bool = True, presence: bool = True, headers: dict[str, str] | None = None,
                      document: bool = True) -> CanvasClient:
        """Connect and wait until the first sync is complete (raises ClientError if refused).

        `presence=False`: announce nothing until the first `set_awareness`, e.g. so that a bot
        is seen only once it has taken note of the room as it found it. `document=False`: a
        presence-only peer (see `document`), connected once the server has admitted it."""
        url = f"{ws_base.rstrip('/')}/{room}" + (f"?token={quote(token)}" if token else "")
        self = cls(url, {"name": name, "color": color, "kind": kind}, reconnect, presence, headers, document)
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._run()), loop.create_task(self._renew())]
        failed = loop.create_task(self._failed.wait())
        synced = loop.create_task(self.synced.wait())
        try:
            done, _ = await asyncio.wait({failed, synced}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            failed.cancel()
            synced.cancel()
        if not self.synced.is_set():
            await self.close()
            raise self.error or ClientError(None, f"no sync within {timeout} s")
        return self

    async def _changed_or(self, seconds: float) -> None:
        # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._changed.wait()

    # public API

    @property
    def client_id(self) -> int:
        return self._aw.client_id

    def set_awareness(self, state: dict[str, Any]) -> None:
        """Merge `state` into our awareness state (e.g. {"cursor": {"x": 1, "y": 2}})."""
        cur = dict(self._aw.get_local_state() or {})
        cur.update(state)
        self._announced = True
        self._aw.set_local_state(cur)

    def local_awareness(self) -> dict[str, Any] | None:
        """Our own awareness state, as peers see it (None before there is one)."""
        state = self._aw.get_local_state()
        return dict(state) if isinstance(state, dict) else None

    def awareness(self) -> dict[int, dict[str, Any]]:
        """Other peers' awareness states by client id."""
        me = self.client_id
        return {cid: st for cid, st in self._aw.states.items() if cid != me and st is not None}

    async def wait_for(self, predicate: Callable[..., Any], timeout: float = 5.0) -> Any:
        """Wait until `predicate(doc)` (or `predicate()`) is truthy; returns its value."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            self._changed.clear()
            value = _call(predicate, self.doc)
            if value:
                return value
            left = deadline - loop.time()
            if left <= 0:
                raise TimeoutError(f"condition not met within {timeout} s")
            await self._changed_or(min(left, 0.25))

    def on_change(self, callback: Callable[..., Any]) -> Callable[[], None]:
        """Call `callback(doc)` (or `callback()`) after document changes; returns an unsubscribe."""
        self._callbacks.append(callback)
        return lambda: self._callbacks.remove(callback) if callback in self._callbacks else None

    def on_presence(self, callback: Callable[[list[dict[str, Any]], list[dict[str, Any]]], None]) -> Callable[[], None]:
        """Call `callback(joined, left)` with the awareness states of peers that appeared and of
        peers that went away (never our own); returns an unsubscribe."""
        self._presence.append(callback)
        return lambda: self._presence.remove(callback) if callback in self._presence else None

    def on_presence_ids(self, callback: Callable[[dict[int, dict[str, Any]], dict[int, dict[str, Any]]], None]) -> Callable[[], None]:
        """`on_presence` keyed by awareness client id (the server can say whose connection holds one)."""
        self._presence_ids.append(callback)
        return lambda: self._presence_ids.remove(callback) if callback in self._presence_ids else None

    async def flush(self, timeout: float = 5.0) -> None:
        """Wait until everything queued so far has been handed to the socket."""
        async with asyncio.timeout(timeout):
            while self._out or self._sending:
                self._drained.clear()
                await self._drained.wait()

    async def abort(self) -> None:
        """Drop the connection without saying goodbye (no awareness removal), as a crashed
        peer would; the server must clean up after us."""
        self._closing = True
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
        await self._stop_tasks()

    async def close(self) -> None:
        self._closing = True
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.send(p.awareness_message(p.encode_awareness([(self.client_id, self._aw.meta[self.client_id]["clock"] + 1, "null")])))
                await ws.close()
        await self._stop_tasks()

    async def _stop_tasks(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(BaseException):
                await t
        self._tasks = []

    async def __aenter__(self) -> CanvasClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # internals

    def _on_doc(self, event: Any) -> None:
        if not self._applying:
            self._send(p.sync_update(event.update))
        if self._callbacks and not self._notify_scheduled:  # before waking waiters: `on_change` sees a change before `wait_for` returns
            self._notify_scheduled = True
            asyncio.get_running_loop().call_soon(self._notify)
        self._changed.set()

    def _notify(self) -> None:
        self._notify_scheduled = False
        for cb in list(self._callbacks):
            try:
                _call(cb, self.doc)
            except Exception:
                log.exception("on_change callback failed")

    def _on_awareness(self, topic: str, change: tuple[dict[str, Any], Any]) -> None:
        self._changed.set()
        if topic == "update" and change[1] == "local":
            self._send(p.awareness_message(self._aw.encode_awareness_update([self.client_id])))
        elif topic == "change" and change[1] != "local":
            self._presence_change(change[0])

    def _presence_change(self, ids: dict[str, list[int]]) -> None:
        me, states, known = self.client_id, self._aw.states, self._known
        joined: dict[int, dict[str, Any]] = {}
        for cid in ids.get("added", []):
            if cid != me and states.get(cid) is not None:
                known[cid] = joined[cid] = states[cid]
        for cid in ids.get("updated", []):
            if cid != me and states.get(cid) is not None:
                known[cid] = states[cid]
        left = {cid: st for cid, st in ((cid, known.pop(cid, None)) for cid in ids.get("removed", []) if cid != me) if st is not None}
        if not joined and not left:
            return
        for cb in list(self._presence):
            try:
                cb(list(joined.values()), list(left.values()))
            except Exception:
                log.exception("on_presence callback failed")
        for cb_ids in list(self._presence_ids):
            try:
                cb_ids(joined, left)
            except Exception:
                log.exception("on_presence_ids callback failed")

    def _send(self, msg: bytes) -> None:
        if self._ws is not None:
            self._out.append(msg)
            self._out_wake.set()

    def _apply(self, update: bytes) -> None:
        self._applying = True
        try:
            self._ydoc.apply_update(update)
        finally:
            self._applying = False

    async def _renew(self) -> None:
        """Renew our awareness every 15 s, as y-protocols does, so peers do not time us out."""
        while True:
            await asyncio.sleep(15)
            if self._announced:
                self._aw.set_local_state(self._aw.get_local_state())

    async def _run(self) -> None:
        delay = 0.1
        while not self._closing:
            try:
                async with websockets.connect(self.url, max_size=None, open_timeout=10, additional_headers=self.headers or None) as ws:
                    delay = 0.1
                    await self._session(ws)
            except websockets.ConnectionClosed as exc:
                rcvd = exc.rcvd
                code, reason = (rcvd.code, rcvd.reason) if rcvd else (None, "connection lost")
                if code is not None and (code in p.NO_RETRY or 4400 <= code < 4500):
                    self.error = ClientError(code, reason)
                    self._failed.set()
                    self._changed.set()
                    return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # connection refused, DNS, timeouts: retry
                log.debug("connect to %s failed: %s", self.url, exc)
            finally:
                self._ws = None
                self._out.clear()
                self._drained.set()
            if not self.reconnect or self._closing:
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    async def _session(self, ws: Any) -> None:
        self._ws = ws
        sender = asyncio.get_running_loop().create_task(self._sender(ws))
        try:
            if self.document:
                await ws.send(p.sync_step1(self._ydoc.get_state()))
            if self._announced:
                await ws.send(p.awareness_message(self._aw.encode_awareness_update([self.client_id])))
            async for frame in ws:
                if isinstance(frame, bytes):
                    self._handle(ws, frame)
        finally:
            sender.cancel()

    async def _sender(self, ws: Any) -> None:
        out, wake = self._out, self._out_wake
        while True:
            if not out:
                self._drained.set()
                wake.clear()
                await wake.wait()
                continue
            self._sending = True
            try:
                await ws.send(out.popleft())
            finally:
                self._sending = False

    def _handle(self, ws: Any, frame: bytes) -> None:
        kind = frame[0]
        if kind == p.MSG_SYNC:
            sub, payload = p.decode_sync(frame)
            if sub == p.SYNC_STEP1:
                self._send(p.sync_step2(self._ydoc.get_update(payload)))
                if not self.document:  # admitted: all a presence-only peer waits for
                    self.synced.set()
                    self._changed.set()
            elif not self.document:
                return
            else:
                if payload != p.EMPTY_UPDATE:
                    self._apply(payload)
                if sub == p.SYNC_STEP2:
                    self.synced.set()
                    self._changed.set()
        elif kind == p.MSG_AWARENESS:
            self._aw.apply_awareness_update(p.decode_awareness_payload(frame), "remote")
        elif kind == p.MSG_AUTH:
            reason, _ = p.read_var_bytes(frame, 2)
            self.read_only = reason.decode(errors="replace")
            self._changed.set()
        elif kind == p.MSG_QUERY_AWARENESS:
            self._send(p.awareness_message(self._aw.encode_awareness_update([self.client_id])))
