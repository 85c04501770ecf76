"""The rooms server's HTTP payloads, defined once: the routes emit them, and the browser's
TypeScript types are generated from them (`python -m inhabit.typegen`). Refusals are
`common.http.ApiError`, as the agent's are."""

from __future__ import annotations

from pydantic import BaseModel, Field

from canvas import Stroke
from canvas.schema import Message
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


class ChatLine(BaseModel):
    """One older chat line, as the room's document held it, and its place in the room's log."""

    seq: int = Field(description="its place in the room's chat log: pass it as `before` for the lines older than it")
    message: Message


class ChatPage(BaseModel):
    """`GET /rooms/{name}/chat?before=SEQ&limit=N`: older chat lines the document let go, oldest first."""

    room: str
    messages: list[ChatLine]
    before: int | None = Field(description="`before` for the next (older) page; null when there is none")


class ChatCleared(BaseModel):
    """`POST /rooms/{name}/chat/clear` (edit token): how many lines the document held (saved)."""

    room: str
    cleared: int
