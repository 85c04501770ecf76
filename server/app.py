"""create_app: the Starlette application, its routes, and plugin wiring (see CONTRACTS.md).

A plugin is any object with `routes` and optional `async startup(app)` / `async shutdown(app)`;
the agent is one. It gets `app.state.config/access/rooms` and nothing else of ours.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from canvas import CanvasDoc

from .access import ROOM_NAME, Access, role_of
from .config import ServerConfig
from .metrics import Metrics
from .rooms import RoomManager
from .store import Store, Writer
from .websocket import room_endpoint

log = logging.getLogger("inhabit.app")

WEB_DIST = Path(__file__).resolve().parent.parent / "web" / "dist"
DB_FILE = "inhabit.db"




def _room_or_error(request: Request) -> tuple[str, Response | None]:
    name = request.path_params["name"]
    if not ROOM_NAME.match(name):
        return name, JSONResponse({"error": "room name must be 1-64 characters of A-Z a-z 0-9 _ -"}, 400)
    if role_of(request, name) is None:
        return name, JSONResponse({"error": "missing, invalid or wrong-room token"}, 401)
    return name, None


async def strokes(request: Request) -> Response:
    name, err = _room_or_error(request)
    if err:
        return err
    room = await request.app.state.rooms.get(name)
    doc = CanvasDoc(room.doc)
    return JSONResponse({"room": name, "strokes": [s.model_dump(exclude_none=True) for s in doc.strokes()]})


async def whoami(request: Request) -> Response:
    name, err = _room_or_error(request)
    if err:
        return err
    return JSONResponse({"room": name, "role": role_of(request, name)})


async def healthz(request: Request) -> Response:
    return JSONResponse({"ok": True, "rooms": len(request.app.state.rooms.rooms)})


async def metrics(request: Request) -> Response:
    state = request.app.state
    return PlainTextResponse(state.metrics.render(state.rooms), media_type="text/plain; version=0.0.4")


async def index(request: Request) -> Response:
    page = WEB_DIST / "index.html"
    if page.is_file():
        return FileResponse(page)
    return PlainTextResponse("inhabit server is running, but the web app is not built: run `node web/build.mjs`.\n")


def create_app(config: ServerConfig, plugins: Iterable[Any] = ()) -> Starlette:
    plugins = list(plugins)
    data = Path(config.data)
    data.mkdir(parents=True, exist_ok=True)
    access = Access.load(data)
    store = Store(data / DB_FILE)
    writer = Writer(store, config.flush_interval)
    mets = Metrics()
    rooms = RoomManager(store, writer, mets, config.unload_grace, config.compact_every)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        writer.start()
        for plugin in plugins:
            if hasattr(plugin, "startup"):
                await plugin.startup(app)
        try:
            yield
        finally:
            for plugin in reversed(plugins):
                if hasattr(plugin, "shutdown"):
                    try:
                        await plugin.shutdown(app)
                    except Exception:
                        log.exception("plugin shutdown failed")
            await rooms.close()
            store.close()

    routes: list[BaseRoute] = [
        WebSocketRoute("/rooms/{name}", room_endpoint),
        Route("/rooms/{name}/strokes", strokes),
        Route("/rooms/{name}/whoami", whoami),
        Route("/healthz", healthz),
        Route("/metrics", metrics),
        Route("/", index),
    ]
    for plugin in plugins:
        routes.extend(plugin.routes)
    routes.append(Mount("/assets", app=StaticFiles(directory=WEB_DIST, check_dir=False), name="assets"))
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.config = config
    app.state.access = access
    app.state.rooms = rooms
    app.state.store = store
    app.state.metrics = mets
    return app
