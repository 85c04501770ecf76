"""Versions: roll a wipe back. `GET /rooms/{name}/versions` lists the kept snapshots (view or
edit token); `POST /rooms/{name}/versions/{id}/restore` (edit token) re-adds the strokes and
widgets (text, buttons) of that version that are missing now (widgets as far as the room's
widget bound allows: `server.widgets`).

A restore rewinds nothing (CRDT-friendly): it is one ordinary edit made through the room, so
every peer receives it like any update and later edits by others stay.
"""

from __future__ import annotations

import asyncio

from pycrdt import Doc
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from canvas import CanvasDoc
from common.access import room_of
from common.http import error_response
from wire.protocol import Close

from .writer import settle


class VersionInfo(BaseModel):
    """One kept version of a room."""

    id: int
    saved_ms: int
    strokes: int


class VersionsResponse(BaseModel):
    """`GET /rooms/{name}/versions`: newest first."""

    room: str
    versions: list[VersionInfo]


class RestoreResponse(BaseModel):
    """`POST /rooms/{name}/versions/{id}/restore`: how many strokes and widgets came back (saved)."""

    room: str
    version: int
    restored: int
    widgets: int = Field(default=0, description="widgets (text, buttons) that came back: fewer than were missing if the room's widget bound was reached")


def _json(model: BaseModel, status: int = 200) -> Response:
    return Response(model.model_dump_json(), status_code=status, media_type="application/json")


async def list_versions(request: Request) -> Response:
    name, _ = room_of(request)
    rows = await asyncio.to_thread(request.app.state.rooms.store.versions, name)
    return _json(VersionsResponse(room=name, versions=[VersionInfo(id=r.id, saved_ms=r.saved_ms, strokes=r.strokes) for r in rows]))


async def restore(request: Request) -> Response:
    name, _ = room_of(request, "edit")
    version = request.path_params["id"]
    rooms = request.app.state.rooms
    data = await asyncio.to_thread(rooms.store.version, name, version)
    if data is None:
        return error_response(404, f"room {name} has no version {version}")
    old: Doc = Doc()
    old.apply_update(data)
    room = await rooms.get(name)
    now, then = CanvasDoc(room.doc), CanvasDoc(old)
    present = set(now.stroke_ids())
    missing = [s for s in then.strokes() if s.id not in present]
    gone = {w.id: w for w in then.widgets() if w.id not in now.widgets_map}
    widgets = [gone[v["id"]] for v in room.widgets.fit([w.to_doc() for w in gone.values()])]

    def bring_back(doc: CanvasDoc) -> None:
        doc.add_strokes(missing)
        doc.put_widgets(widgets)
    refusal = room.edit(bring_back) if missing or widgets else None
    if refusal is not None:
        code, reason = refusal
        return error_response(503 if code == Close.UNAVAILABLE else 413, reason)
    saved: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    room.after_commit(settle, saved)
    await saved  # answer once the restore is on disk, like any acknowledged edit
    if room.failed is not None:  # cluster mode: the append failed and the room was dropped
        return error_response(503, f"the restore was not saved: {room.failed}; try again later")
    return _json(RestoreResponse(room=name, version=version, restored=len(missing), widgets=len(widgets)))


routes = [
    Route("/rooms/{name}/versions", list_versions, methods=["GET"]),
    Route("/rooms/{name}/versions/{id:int}/restore", restore, methods=["POST"]),
]
