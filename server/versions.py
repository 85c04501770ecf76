"""Versions: roll a wipe back. `GET /rooms/{name}/versions` lists the kept snapshots (view or
edit token); `POST /rooms/{name}/versions/{id}/restore` (edit token) re-adds the strokes of
that version that are missing now.

A restore rewinds nothing (CRDT-friendly): it is one ordinary edit made through the room, so
every peer receives it like any update and later edits by others stay.
"""

from __future__ import annotations

import asyncio

from pycrdt import Doc
from pydantic import BaseModel
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
    """`POST /rooms/{name}/versions/{id}/restore`: how many strokes came back (saved)."""

    room: str
    version: int
    restored: int


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
    present = set(CanvasDoc(room.doc).stroke_ids())
    missing = [s for s in CanvasDoc(old).strokes() if s.id not in present]
    refusal = room.edit(lambda doc: doc.add_strokes(missing)) if missing else None
    if refusal is not None:
        code, reason = refusal
        return error_response(503 if code == Close.UNAVAILABLE else 413, reason)
    saved: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    room.after_commit(settle, saved)
    await saved  # answer once the restore is on disk, like any acknowledged edit
    if room.failed is not None:  # cluster mode: the append failed and the room was dropped
        return error_response(503, f"the restore was not saved: {room.failed}; try again later")
    return _json(RestoreResponse(room=name, version=version, restored=len(missing)))


routes = [
    Route("/rooms/{name}/versions", list_versions, methods=["GET"]),
    Route("/rooms/{name}/versions/{id:int}/restore", restore, methods=["POST"]),
]
