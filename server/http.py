"""The rooms server's HTTP payloads, defined once: the routes emit them, and the browser's
TypeScript types are generated from them (`python -m inhabit.typegen`)."""

from __future__ import annotations

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from canvas import Stroke
from common.access import Denied, Role, authorize


class StrokesResponse(BaseModel):
    """`GET /rooms/{name}/strokes`."""

    room: str
    strokes: list[Stroke]


class WhoAmI(BaseModel):
    """`GET /rooms/{name}/whoami`: the caller's role in the room."""

    room: str
    role: Role


class ErrorResponse(BaseModel):
    """Every refusal: a message a person can act on."""

    error: str


def error(status: int, message: str) -> Response:
    return JSONResponse(ErrorResponse(error=message).model_dump(), status)


def room_or_error(request: Request, need: Role = "view") -> tuple[str, Response | None]:
    """The room named in the path, or the refusal to answer instead (see `common.access.authorize`)."""
    name = request.path_params["name"]
    try:
        authorize(request, name, need)
    except Denied as exc:
        return name, error(exc.status, exc.message)
    return name, None
