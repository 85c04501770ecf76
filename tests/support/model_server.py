"""A scripted Messages-API server on loopback, so tests exercise the real `anthropic` client.

Why scripted by conversation step and room: the reply to a request is `script[n]` where n is
the number of assistant turns already in the request, and the script is chosen by the room
name found in the system prompt. So one model server serves many rooms and concurrent runs
deterministically, with no shared cursor to reset. Every request is recorded for asserts.

Turn forms:
  {"tool": "search" | "execute" | any, "input": {...}}   -> a tool_use turn
  {"text": "..."}                                       -> a final end_turn reply
  {"raw": "...", "status": 200, "content_type": "..."}  -> a verbatim (e.g. garbage) response
  any of them with "wait": seconds                     -> answered that much later
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import time
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

Turn = dict[str, Any]


class ModelServer:
    def __init__(self) -> None:
        self.scripts: dict[str, list[Turn]] = {}
        self.default: list[Turn] = [{"text": "(scripted model: no script for this room)"}]
        self.requests: list[dict[str, Any]] = []
        self._n = 0
        app = Starlette(routes=[Route("/v1/messages", self._messages, methods=["POST"])])
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        sock.close()
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"))
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ModelServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("model server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(5)

    def script(self, room: str, turns: list[Turn]) -> None:
        self.scripts[room] = turns

    def requests_for(self, room: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["room"] == room]

    async def _messages(self, request: Request) -> Response:
        body = await request.json()
        system = body.get("system")
        system_text = system if isinstance(system, str) else json.dumps(system)
        m = re.search(r'in "([^"]+)"', system_text or "")
        room = m.group(1) if m else ""
        self.requests.append({"room": room, "headers": dict(request.headers), "body": body})
        step = sum(1 for msg in body.get("messages", []) if msg.get("role") == "assistant")
        turns = self.scripts.get(room, self.default)
        turn = turns[step] if step < len(turns) else {"text": "(scripted model: script exhausted)"}
        if "wait" in turn:  # a slow model: the run stays in flight this long
            await asyncio.sleep(turn["wait"])
        if "raw" in turn:
            return Response(turn["raw"], status_code=turn.get("status", 200), media_type=turn.get("content_type", "application/json"))
        self._n += 1
        if "text" in turn:
            content = [{"type": "text", "text": turn["text"]}]
            stop = "end_turn"
        else:
            content = [{"type": "tool_use", "id": f"toolu_{self._n:06d}", "name": turn["tool"], "input": turn.get("input", {})}]
            stop = "tool_use"
        return JSONResponse({
            "id": f"msg_{self._n:06d}",
            "type": "message",
            "role": "assistant",
            "model": body.get("model", "scripted"),
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": {"input_tokens": len(json.dumps(body)) // 4, "output_tokens": len(json.dumps(content)) // 4},
        })
