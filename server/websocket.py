"""The websocket endpoint `/rooms/{name}?token=`: admission, then the receive loop.

Every refusal is a close frame with a code and a human reason (never a bare HTTP 403), so
clients and people can tell a bad token from a bad room name from bad input; the codes are
`wire.protocol.Close`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from starlette.websockets import WebSocket, WebSocketState

from common.access import OPEN, ROOM_RULE, TokenError, token_of, valid_room
from wire.protocol import Close, ProtocolError

from .room import Conn

log = logging.getLogger("inhabit.ws")


async def refuse(ws: WebSocket, code: int, reason: str) -> None:
    ws.app.state.metrics.rejected += 1
    await ws.accept()
    await ws.close(code, reason)


async def room_endpoint(ws: WebSocket) -> None:
    state = ws.app.state
    settings, metrics = state.settings, state.metrics
    name = ws.path_params["name"]
    if not valid_room(name):
        return await refuse(ws, Close.BAD_ROOM, ROOM_RULE)
    try:  # expired, revoked, forged or another room's token: refused before the room loads
        who = OPEN if settings.open else state.access.verify(token_of(ws), name)
    except TokenError as exc:
        return await refuse(ws, exc.code, str(exc))
    role = who.role

    rooms = state.rooms
    room = await rooms.acquire(name)
    await ws.accept()
    metrics.connections += 1
    conn = Conn(ws, role, settings.send_queue, metrics)
    conn.start()
    room.join(conn)
    max_message = settings.max_message
    receive = ws._receive  # the raw ASGI receive: no per-message state bookkeeping
    try:
        while not conn.closed:
            msg = await receive()
            if msg["type"] != "websocket.receive":
                break  # websocket.disconnect
            data = msg.get("bytes")
            if data is None:
                metrics.bad_input += 1
                conn.close(Close.TEXT_FRAME, "text frames are not supported: send binary y-websocket messages")
                break
            metrics.messages_in += 1
            metrics.bytes_in += len(data)
            if len(data) > max_message:
                metrics.bad_input += 1
                conn.close(Close.TOO_BIG, f"message of {len(data)} bytes exceeds the limit of {max_message} bytes")
                break
            try:
                room.handle(conn, data)
            except ProtocolError as exc:
                metrics.bad_input += 1
                conn.close(Close.MALFORMED, f"malformed message: {exc}")
                break
            except Exception:  # nothing a client sends may take the room down
                log.exception("error handling a message in room %s", name)
                conn.close(Close.INTERNAL, "internal error while handling your message")
                break
    except Exception:  # connection dropped under us
        pass
    finally:
        room.leave(conn)
        rooms.release(room)
        await _finish(conn)
        if ws.application_state == WebSocketState.CONNECTED:
            with contextlib.suppress(Exception):
                await ws.close(Close.NORMAL)


async def _finish(conn: Conn) -> None:
    """Stop the connection's sender: at once if the peer left, else after its close frame."""
    task = conn.task
    if task is None:
        return
    if conn.close_args is None:  # peer left: nothing more to send
        conn.closed = True
        task.cancel()
        return
    try:  # let the queued close frame go out, but never wait on a dead peer for long
        async with asyncio.timeout(2.0):
            await asyncio.shield(task)
    except Exception:
        task.cancel()
