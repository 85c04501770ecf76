"""create_app: the rooms server as a Starlette application, with its routes and plugins.

A plugin (`server.plugin.Plugin`) adds routes and start-up/shutdown hooks; the agent is one.
It gets a `Host` (settings and token authority) and nothing of the rooms. Every HTTP request
passes `edge.BrowserEdge` first (which pages may act here; the page's security headers).
The page it serves is package data (`server/static`, which `node web/build.mjs` fills in a
checkout and a wheel carries), found through importlib.resources, never beside a checkout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from importlib import resources
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from common.access import Access, room_of
from common.actor import Actor
from common.disk import DiskBudget
from common.http import Refusal, answer_refusal, error_response
from common.lapses import Lapses

from .chat_routes import routes as chat_routes
from .chatlog import ChatHistory
from .cluster.node import ClusterNode
from .edge import BrowserEdge
from .http import WhoAmI
from .metrics import Exporter, Metrics
from .plugin import Host, Plugin
from .reads import ReadGate, strokes
from .rooms import RoomManager, Rooms, RoomUnavailable
from .settings import ServerSettings
from .store import DataFolderError, Store
from .versions import routes as version_routes
from .vouch import ServerPeers
from .websocket import room_endpoint
from .writer import RoomWriter, Writer

log = logging.getLogger("inhabit.app")

WEB_STATIC = Path(str(resources.files("server") / "static"))
"""The built page: index.html, app.js, app.css (an installed package is always unpacked on disk)."""
DB_FILE = "inhabit.db"


async def whoami(request: Request) -> Response:
    name, who = room_of(request)
    return JSONResponse(WhoAmI(room=name, role=who.role).model_dump())


async def healthz(request: Request) -> Response:
    body: dict[str, object] = {"ok": True, "rooms": len(request.app.state.rooms.rooms)}
    node = request.app.state.node
    if node is not None:  # cluster mode: unhealthy unless both Redis and PostgreSQL answer
        body.update(node.health())
    return JSONResponse(body, 200 if body["ok"] else 503)


async def unavailable(request: Request, exc: Exception) -> Response:
    return error_response(503, f"{exc}; try again later")


async def metrics(request: Request) -> Response:
    return Response(request.app.state.exporter.render(), media_type="text/plain; version=0.0.4")


async def index(request: Request) -> Response:
    page = WEB_STATIC / "index.html"
    if page.is_file():
        return FileResponse(page)
    return PlainTextResponse("inhabit server is running, but the web app is not built: run `node web/build.mjs`.\n")


def open_data(data: Path, versions_kept: int, secret: str | None = None, versions_bytes: int = 0) -> tuple[Access, Store]:
    """The token secret and the store, or one DataFolderError saying what is wrong with `data`."""
    try:
        data.mkdir(parents=True, exist_ok=True)
        access = Access.load(data, secret)
    except OSError as exc:
        raise DataFolderError(f"cannot use the data folder {data}: {exc.strerror or exc}") from exc
    return access, Store(data / DB_FILE, versions_kept, versions_bytes)


def create_app(settings: ServerSettings, plugins: Sequence[Plugin] = ()) -> Starlette:
    """One process with SQLite under `settings.data` (embedded), or one node of a cluster
    sharing its rooms through Redis and PostgreSQL (`settings.clustered`): the same rooms,
    routes and plugins on either, only the writer, the store and the room loading differ."""
    counters = Metrics()
    bounds = settings.history
    secret = settings.secret.get_secret_value() if settings.secret else None
    node: ClusterNode | None = None
    rooms: Rooms
    writer: RoomWriter
    limits = settings.disk
    if settings.clustered:
        node = ClusterNode(settings, counters, bounds)
        access, rooms, writer = node.access, node.rooms, node.writer
        disk = DiskBudget(limits, node.snapshots, live=lambda: set(rooms.rooms))  # PostgreSQL: per-room bounds and expiry, no folder
        disk.add(node.snapshots, limits.room_versions_bytes)
        disk.add(ChatHistory(node.snapshots), settings.history.chat_kept_bytes)
        node.snapshots.kept.refused = lambda: disk.refusal
    else:
        access, store = open_data(Path(settings.data), settings.versions_kept, secret, limits.room_versions_bytes)
        writer = Writer(store)
        rooms = RoomManager(store, writer, counters, settings.unload_grace, bounds)
        disk = DiskBudget(limits, store, Path(settings.data), live=lambda: set(rooms.rooms))
        disk.add(store, limits.room_versions_bytes)
        disk.add(ChatHistory(store), settings.history.chat_kept_bytes)
        store.kept.refused = lambda: disk.refusal
    rooms.watch(disk.touch)  # when each room was last opened: what to trim first, and --room-ttl
    peers = ServerPeers()

    def presence_of(room: str, client_id: int) -> Actor | None:
        loaded = rooms.rooms.get(room)
        conn = loaded.owners.get(client_id) if loaded is not None else None
        return None if conn is None or conn.closed else conn.actor

    def writer_of(room: str, message_id: str) -> Actor | None:
        loaded = rooms.rooms.get(room)
        return loaded.attribution.writer_of(message_id) if loaded is not None else None

    lapses = Lapses(access.revoked)  # open websockets, MCP sessions, behaviours: cut when their link lapses
    host = Host(settings=settings, access=access, watch_rooms=rooms.watch, cluster=node.cluster if node else None, lapses=lapses,
                presence_of=presence_of, peers=peers, writer_of=writer_of, disk=disk)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if node is not None:
            await node.start()
        else:
            writer.start()
        lapses.start()
        for plugin in plugins:
            await plugin.startup(host)
        sweeping = asyncio.create_task(disk.run(), name="disk-sweep")
        try:
            yield
        finally:
            sweeping.cancel()
            try:
                await asyncio.to_thread(disk.remember)
            except Exception as exc:  # PostgreSQL away: the rooms count as opened at the next sweep that finds them
                log.warning("cannot record when rooms were opened: %s", exc)
            for plugin in reversed(plugins):
                try:
                    await plugin.shutdown()
                except Exception:
                    log.exception("plugin shutdown failed")
            await lapses.stop()
            await rooms.close()
            if node is not None:
                await node.stop()
            else:
                store.close()

    routes: list[BaseRoute] = [
        WebSocketRoute("/rooms/{name}", room_endpoint),
        Route("/rooms/{name}/strokes", strokes),
        Route("/rooms/{name}/whoami", whoami),
        *version_routes,
        *chat_routes,
        Route("/healthz", healthz),
        Route("/metrics", metrics),
        Route("/", index),
    ]
    for plugin in plugins:
        routes.extend(plugin.routes)
    routes.append(Mount("/assets", app=StaticFiles(directory=WEB_STATIC, check_dir=False), name="assets"))
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={RoomUnavailable: unavailable, Refusal: answer_refusal},
                    middleware=[Middleware(BrowserEdge, settings=settings, metrics=counters)])  # Origin/Host, page headers
    app.state.settings = settings
    app.state.access = access
    app.state.lapses = lapses
    app.state.peers = peers
    app.state.rooms = rooms
    app.state.metrics = counters
    app.state.reads = ReadGate(settings.reads)  # every link's HTTP reads: rate and in flight
    app.state.node = node
    app.state.disk = disk
    gauges = [rooms.gauges, writer.gauges, disk.gauges, *([node.gauges] if node else []), *(p.gauges for p in plugins)]
    app.state.exporter = Exporter(counters, *gauges)
    return app
