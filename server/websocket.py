"""The websocket endpoint `/rooms/{name}?token=`: admission, then the receive loop.

Every refusal is a close frame with a code and a human reason (never a bare HTTP 403), so
clients and people can tell a bad token from a bad room name from bad input:
4400 bad room name, 4401 missing/bad token, 4403 token for another room, 1003 text frame,
1007 malformed message, 1009 message too big, 1011 unexpected server error.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.websockets import WebSocket, WebSocketState

from .access import ROOM_NAME, token_of
from .protocol import ProtocolError
from .room import Conn

log = logging.getLogger("inhabit.ws")



async def refuse(ws: WebSocket, code: int, reason: str) -> None:
    ws.app.state.metrics.rejected_total += 1
    await ws.accept()
    await ws.close(code, reason)


async def room_endpoint(ws: WebSocket) -> None:
    state = ws.app.state
    config, metrics = state.config, state.metrics
    name = ws.path_params["name"]
    if not ROOM_NAME.match(name):
        return await refuse(ws, 4400, "room name must be 1-64 characters of A-Z a-z 0-9 _ -")
    if config.open:
        role = "edit"
    else:
        token = token_of(ws)
        if not token:
            return await refuse(ws, 4401, "missing token: add ?token=... (see `inhabit token`)")
        role = state.access.check(token, name)
        if role is None:
            if state.access.check(token, "*") is None and _genuine(state.access, token):
                return await refuse(ws, 4403, f"token is for another room, not '{name}'")
            return await refuse(ws, 4401, "invalid token")

    rooms = state.rooms
    room = await rooms.acquire(name)
    await ws.accept()
    metrics.connections_total += 1
    conn = Conn(ws, role, config.send_queue, metrics)
    conn.start()
    room.join(conn)
    max_message = config.max_message
    receive = ws._receive  # the raw ASGI receive: no per-message state bookkeeping
    try:
        while not conn.closed:
            msg = await receive()
            if msg["type"] != "websocket.receive":
                break  # websocket.disconnect
            data = msg.get("bytes")
            if data is None:
                metrics.bad_input_total += 1
                conn.close(1003, "text frames are not supported: send binary y-websocket messages")
                break
            metrics.messages_in += 1
            metrics.bytes_in += len(data)
            if len(data) > max_message:
                metrics.bad_input_total += 1
                conn.close(1009, f"message of {len(data)} bytes exceeds the limit of {max_message} bytes")
                break
            try:
                room.handle(conn, data)
            except ProtocolError as exc:
                metrics.bad_input_total += 1
                conn.close(1007, f"malformed message: {exc}")
                break
            except Exception:  # nothing a client sends may take the room down
                log.exception("error handling a message in room %s", name)
                conn.close(1011, "internal error while handling your message")
                break
    except Exception:  # connection dropped under us
        pass
    finally:
        room.leave(conn)
        rooms.release(room)
        task = conn.task
        if task is not None:
            if conn.close_args is None:  # peer left: nothing more to send
                conn.closed = True
                task.cancel()
            else:  # let the queued close frame go out, but never wait on a dead peer for long
                try:
                    async with asyncio.timeout(2.0):
                        await asyncio.shield(task)
                except Exception:
                    task.cancel()
        if ws.application_state == WebSocketState.CONNECTED:
            try:
                await ws.close(1000)
            except Exception:
                pass


def _genuine(access, token: str) -> bool:  # type: ignore[no-untyped-def]
    try:
        access.parse(token)
        return True
    except ValueError:
        return False
