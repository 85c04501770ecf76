"""The HTTP error body, defined once: every refusal of the server's and the agent's routes.

Why: each route module had its own `{"error"}` helper and caught the same refusals. A route
raises `Refusal` (or `common.access.authorize` raises `Denied`, one) and the app answers it
(`answer_refusal`, registered by `server.app.create_app`), or it returns `error_response`.
The body is `ApiError`: `{"error": "..."}`, plus `retry_after` on the 429s and 503s that
say when to ask again (with a `Retry-After` header).
"""

from __future__ import annotations

import math

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response


class ApiError(BaseModel):
    """Every refusal (4xx/5xx): a message a person can act on; 429 and 503 may also say when to ask again."""

    error: str
    retry_after: int | None = Field(default=None, description="seconds to wait before asking again (also the `Retry-After` header)")


def error_response(status: int, message: str, retry_after: float | None = None) -> Response:
    """The error body at `status`; `retry_after` (seconds, rounded up) also goes in `Retry-After`."""
    retry = math.ceil(retry_after) if retry_after is not None else None
    headers = {"Retry-After": str(retry)} if retry is not None else None
    return Response(ApiError(error=message, retry_after=retry).model_dump_json(exclude_none=True), status_code=status,
                    media_type="application/json", headers=headers)


class Refusal(Exception):
    """A request refused: raised from a route, answered as `error_response(status, message, retry_after)`."""

    def __init__(self, status: int, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after

    def response(self) -> Response:
        return error_response(self.status, self.message, self.retry_after)


async def answer_refusal(request: Request, exc: Exception) -> Response:
    """The app's exception handler for `Refusal`."""
    assert isinstance(exc, Refusal)
    return exc.response()
