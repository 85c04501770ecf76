"""Shared fixtures: a REAL `python -m inhabit serve` subprocess per test (see CONTRACTS.md)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from support import ROOT
from support.cluster_fixtures import Postgres, RedisServer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """`inhabit serve` on a free loopback port with its own data dir; always cleaned up."""

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None, **config: Any) -> None:
        self.data_dir = Path(data_dir)
        self.port = free_port()
        self.config = config
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.data_dir.parent / f"server-{self.port}.log"
        self._tokens: dict[tuple[str, str], str] = {}

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/rooms"

    def _args(self) -> list[str]:
        args = [sys.executable, "-m", "inhabit", "serve", "--host", "127.0.0.1", "--port", str(self.port), "--data", str(self.data_dir)]
        for key, value in self.config.items():
            flag = "--" + key.replace("_", "-")
            if value is True:
                args.append(flag)
            elif value not in (False, None):
                args += [flag, str(value)]
        return args

    def start(self, timeout: float = 20.0) -> LiveServer:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **(self.env or {})}
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self._args(), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.http + "/healthz", timeout=0.5).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.kill9()
        raise RuntimeError(f"server did not become healthy in {timeout} s:\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def token(self, room: str = "*", role: str = "edit") -> str:
        key = (room, role)
        if key not in self._tokens:
            out = subprocess.run([sys.executable, "-m", "inhabit", "token", room, "--role", role, "--data", str(self.data_dir)],
                                 cwd=ROOT, env={**os.environ, **(self.env or {})}, capture_output=True, text=True, check=True, timeout=30)
            self._tokens[key] = out.stdout.strip().splitlines()[-1]
        return self._tokens[key]

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM and wait (graceful: the server flushes); SIGKILL if it hangs."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return proc.returncode if proc else None
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait(5)

    def kill9(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(5)

    def restart(self) -> LiveServer:
        """Graceful stop, then start again on the same port and data dir."""
        self.stop()
        return self.start()


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


# ---- cluster mode: real redis-server and PostgreSQL in temp folders (tests/cluster_fixtures.py) ----


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    pg = Postgres()
    try:
        yield pg.start()
    finally:
        pg.cleanup()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    srv = RedisServer(tmp_path / "redis")
    try:
        yield srv.start()
    finally:
        srv.stop()


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


# ---- browser (Playwright for Python driving Debian's Chromium, installed by bin/dev) -------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="session")
def web_build() -> None:
    subprocess.run(["node", "web/build.mjs"], cwd=ROOT, check=True, timeout=120)
    (ROOT / "test-artifacts").mkdir(exist_ok=True)


@pytest.fixture
def browser(web_build: None) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Debian's chromium is missing: run the tests through `bin/dev test`"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


# ---- a scripted Messages-API server on loopback (tests/model_server.py) ---------------------


@pytest.fixture
def model_server() -> Iterator[Any]:
    from support.model_server import ModelServer

    ms = ModelServer().start()
    yield ms
    ms.stop()
