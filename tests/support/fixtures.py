"""The fixtures every area uses: live servers, cluster nodes on Redis and PostgreSQL, the
scripted model server. Registered by `tests/conftest.py` (`pytest_plugins`).

What is costly to start and holds no test's state is started once per session (per xdist
worker): PostgreSQL (each test gets its own database) and Redis (emptied before each test;
restarted when a test left it stopped). A module whose tests only need a room of their own
shares one server (`shared_server`, rooms from `room`; `agent_server` with a scripted model)
instead of starting one per test.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import count
from pathlib import Path
from typing import Any

import pytest

from support.agent_helpers import scripted_env
from support.cluster_fixtures import Postgres, RedisServer
from support.live_server import LiveServer
from support.model_server import ModelServer


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[Any]:
    servers: list[LiveServer] = []

    def make(env: dict[str, str] | None = None, **config: Any) -> LiveServer:
        data = tmp_path / f"data{len(servers)}"
        srv = LiveServer(data, env=env, **config)
        servers.append(srv)
        return srv.start()

    yield make
    for srv in servers:
        srv.stop()


@pytest.fixture
def server(server_factory: Any) -> LiveServer:
    return server_factory()


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One default server for a module's tests that neither restart it nor count what is global
    (rooms loaded, metrics): a module opts in by defining `server` as this. Each test uses rooms
    no other test of the module uses (the `room` fixture, or names of its own)."""
    srv = LiveServer(tmp_path_factory.mktemp("shared") / "data")
    try:
        yield srv.start()
    finally:
        srv.stop()


_rooms = count()


@pytest.fixture
def room() -> str:
    """A room name no other test of this session uses."""
    return f"room-{next(_rooms)}"


# ---- cluster mode: real redis-server and PostgreSQL in temp folders (support/cluster_fixtures.py) ----


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    pg = Postgres()
    try:
        yield pg.start()
    finally:
        pg.cleanup()


@pytest.fixture(scope="session")
def redis_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for the session (per worker); tests get it through `redis_server`."""
    srv = RedisServer(tmp_path_factory.mktemp("redis"))
    try:
        yield srv.start()
    finally:
        srv.stop()


@pytest.fixture
def redis_server(redis_service: RedisServer) -> RedisServer:
    """The session's Redis, empty, and running even if the test before stopped it."""
    if redis_service.proc is None or redis_service.proc.poll() is not None:
        redis_service.start()
    client = redis_service.client()
    try:
        client.flushall()
    finally:
        client.close()
    return redis_service


class Cluster:
    """Nodes of one cluster (`inhabit serve` processes on one Redis and one PostgreSQL database)."""

    def __init__(self, root: Path, redis: RedisServer, postgres: Postgres) -> None:
        self.root = root
        self.redis = redis
        self.postgres = postgres
        self.database_url = postgres.create_database()
        self.nodes: list[LiveServer] = []

    @property
    def env(self) -> dict[str, str]:
        return {"INHABIT_REDIS_URL": self.redis.url, "INHABIT_DATABASE_URL": self.database_url}

    def node(self, env: dict[str, str] | None = None, **config: Any) -> LiveServer:
        """Start one more node (its own data folder, for what stays local: logs)."""
        srv = LiveServer(self.root / f"node{len(self.nodes)}", env={**self.env, **(env or {})}, **config)
        self.nodes.append(srv)
        return srv.start()

    def stop(self) -> None:
        for srv in self.nodes:
            srv.stop()


@pytest.fixture
def cluster(tmp_path: Path, redis_server: RedisServer, postgres: Postgres) -> Iterator[Cluster]:
    if postgres.proc is None:  # a test that stopped it failed before starting it again
        postgres.start()
    c = Cluster(tmp_path, redis_server, postgres)
    try:
        yield c
    finally:
        c.stop()


# ---- a scripted Messages-API server on loopback (support/model_server.py) ---------------------


@pytest.fixture
def model_server() -> Iterator[ModelServer]:
    ms = ModelServer().start()
    yield ms
    ms.stop()


@pytest.fixture(scope="module")
def shared_model_server() -> Iterator[ModelServer]:
    """One scripted model server for a module (its scripts are chosen by room): a module opts in
    by defining `model_server` as this."""
    ms = ModelServer().start()
    yield ms
    ms.stop()


@pytest.fixture(scope="module")
def agent_server(shared_model_server: ModelServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One default server whose agent talks to the module's scripted model server, for tests
    that only need rooms of their own (as `shared_server`)."""
    srv = LiveServer(tmp_path_factory.mktemp("agent") / "data", env=scripted_env(shared_model_server))
    try:
        yield srv.start()
    finally:
        srv.stop()
