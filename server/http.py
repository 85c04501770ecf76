"""The rooms server's HTTP payloads, defined once: the routes emit them, and the browser's
TypeScript types are generated from them (`python -m inhabit.typegen`). Refusals are
`common.http.ApiError`, as the agent's are."""

from __future__ import annotations

from pydantic import BaseModel, Field

from canvas import Stroke
from common.access import Role


class StrokesResponse(BaseModel):
    """`GET /rooms/{name}/strokes[?limit=N&after=CURSOR]`: the strokes oldest first (by `t`, then `id`).
    Streamed from the room's strokes encoded once (`server.reads`)."""

    room: str
    strokes: list[Stroke]
    next: str | None = Field(default=None, description="with `limit`, when more strokes follow: pass it as `after` for the next page")


class WhoAmI(BaseModel):
    """`GET /rooms/{name}/whoami`: the caller's role in the room."""

    room: str
    role: Role
