"""Chat over HTTP: the older lines a room's document let go (`GET /rooms/{name}/chat`, view
token, paged by `before`/`limit`) and clearing a room's chat (`POST /rooms/{name}/chat/clear`,
edit token; Origin-checked like every POST by `server.edge`).

Why HTTP: older lines live in the store, not in the document (`server.chat`), so a page reads
them on demand; and an editor must be able to free a full room's chat even when the room takes
no edits from peers (a server edit deletes the lines, whatever the room's size).
"""

from __future__ import annotations

import asyncio

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from canvas.schema import Message
from common.access import room_of
from common.http import Refusal, error_response

from .chatlog import PAGE_LIMIT
from .http import ChatCleared, ChatLine, ChatPage
from .writer import settle


def _int(request: Request, name: str, default: int | None) -> int | None:
    value = request.query_params.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise Refusal(400, f"{name} must be an integer") from None


async def older(request: Request) -> Response:
    name, _ = room_of(request)
    before = _int(request, "before", None)
    limit = min(max(_int(request, "limit", 50) or 50, 1), PAGE_LIMIT)
    rows = await request.app.state.rooms.chat_archive.page(name, before, limit)
    lines = []
    for row in rows:
        try:
            lines.append(ChatLine(seq=row.seq, message=Message.model_validate_json(row.data)))
        except ValidationError:
            continue  # a malformed line some peer wrote: skipped, as on every read of the document
    page = ChatPage(room=name, messages=lines, before=rows[0].seq if len(rows) == limit else None)
    return Response(page.model_dump_json(exclude_none=False), media_type="application/json")


async def clear(request: Request) -> Response:
    name, _ = room_of(request, "edit")
    rooms = request.app.state.rooms
    room = await rooms.get(name)
    if room.writer.unavailable is not None:
        return error_response(503, f"the server cannot save edits right now: {room.writer.unavailable}", retry_after=2)
    cleared = room.clear_chat()
    await rooms.chat_archive.clear(name)
    saved: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    room.after_commit(settle, saved)
    await saved  # answer once the clear is on disk, like any acknowledged edit
    if room.failed is not None:  # cluster mode: the append failed and the room was dropped
        return error_response(503, f"the clear was not saved: {room.failed}; try again later")
    return Response(ChatCleared(room=name, cleared=cleared).model_dump_json(), media_type="application/json")


routes = [
    Route("/rooms/{name}/chat", older, methods=["GET"]),
    Route("/rooms/{name}/chat/clear", clear, methods=["POST"]),
]
