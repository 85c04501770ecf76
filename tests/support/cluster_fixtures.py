"""Real Redis and PostgreSQL for cluster tests and benchmarks, in temporary folders on loopback,
plus a TCP load balancer in front of the nodes (no sticky sessions).

`redis-server` and PostgreSQL come from Debian's packages (`bin/dev` installs them). PostgreSQL
refuses to run as root: as root, `initdb` and `postgres` run as the `postgres` user (created by
the package; `nobody` otherwise) in a folder owned by it, started as our own children (Popen's
`user=`, not `runuser`) so that we reap them: a container's init may not, and a dead but
unreaped postmaster keeps its pid, which a restart would take for a running one. Everything is stopped (SIGKILL if it
must) and deleted by `stop()`, which the fixtures call even when a test fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

PG_BIN = max(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name), default=Path("/usr/lib/postgresql/15/bin"))
"""Debian's newest installed PostgreSQL (15 on bookworm)."""
REDIS = "/usr/bin/redis-server"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, proc: subprocess.Popen[bytes], what: str, log: Path, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port} in {timeout} s:\n{log.read_text(errors='replace')[-3000:]}")


def _stop(proc: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


class RedisServer:
    """`redis-server` on a free loopback port, its files in `folder`. `appendfsync`: `always`
    (every acknowledged write survives even a kill of Redis), `everysec`, or `no-aof`."""

    def __init__(self, folder: Path, appendfsync: str = "always") -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.appendfsync = appendfsync
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        aof = ["--appendonly", "no"] if self.appendfsync == "no-aof" else ["--appendonly", "yes", "--appendfsync", self.appendfsync]
        args = [REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder), "--save", "", *aof,
                "--logfile", "redis.log"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        _wait_port(self.port, self.proc, "redis-server", self.folder / "redis.log")
        return self

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        _stop(proc)

    def kill9(self) -> None:
        proc, self.proc = self.proc, None
        _stop(proc, signal.SIGKILL)

    def client(self) -> Any:
        """A synchronous `redis.Redis` on this server."""
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port)

    def commands(self) -> int:
        """Commands Redis has processed so far (for operations per update)."""
        return int(self.client().info("stats")["total_commands_processed"])


class Postgres:
    """A PostgreSQL cluster on a free loopback port (fsync off: a test needs it to survive a
    killed process, not a power cut); one database per test from `create_database()`."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="inhabit-pg-"))
        self.data = self.folder / "data"
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self._dbs = itertools.count()
        self._as: dict[str, Any] = {}
        if os.getuid() == 0:  # PostgreSQL will not run as root
            pw = pwd.getpwnam("postgres" if _user_exists("postgres") else "nobody")
            os.chown(self.folder, pw.pw_uid, pw.pw_gid)
            self._as = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": [], "env": {**os.environ, "HOME": str(self.folder)}}

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> Postgres:
        assert (PG_BIN / "postgres").exists(), "PostgreSQL is missing: run the tests through `bin/dev test` (installs it)"
        if not self.data.exists():
            subprocess.run([str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                            "-E", "UTF8", "--no-sync", "--no-instructions"], check=True, capture_output=True, timeout=120, cwd=self.folder, **self._as)
        log = self.folder / "postgres.log"
        with open(log, "ab") as out:
            self.proc = subprocess.Popen([str(PG_BIN / "postgres"), "-D", str(self.data), "-p", str(self.port), "-k", str(self.folder),
                                          "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=200"],
                                         stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=self.folder, **self._as)
        _wait_port(self.port, self.proc, "postgres", log)
        deadline = time.monotonic() + 20
        while True:  # listening is not yet accepting queries (startup recovery)
            try:
                self.execute("SELECT 1")
                return self
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def execute(self, sql: str, database: str = "postgres") -> list[tuple]:
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True, connect_timeout=5) as conn:
            cur = conn.execute(sql)  # type: ignore[arg-type]
            return cur.fetchall() if cur.description else []

    def create_database(self) -> str:
        name = f"t{os.getpid()}_{next(self._dbs)}"
        self.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def _signal(self, sig: int) -> None:
        """Signal the postmaster and wait for it; SIGKILL goes to its whole process group (its
        backends too, as if the machine had died)."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            if sig == signal.SIGKILL:
                os.killpg(proc.pid, sig)
            else:
                proc.send_signal(sig)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def stop(self) -> None:
        """Fast shutdown (SIGINT): what is committed stays."""
        self._signal(signal.SIGINT)

    def kill9(self) -> None:
        self._signal(signal.SIGKILL)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


class Balancer:
    """A TCP load balancer on loopback in front of the nodes, as a deployment would put one:
    each new connection goes to the next backend in turn that accepts it (no sticky sessions);
    when a backend dies, its connections drop and reconnect elsewhere. Runs in the test's loop."""

    def __init__(self, ports: list[int]) -> None:
        self.ports = list(ports)
        self._turn = itertools.count()
        self._server: asyncio.AbstractServer | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self.port = 0

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/rooms"

    async def __aenter__(self) -> Balancer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._pipes.add(task)
        try:
            for _ in range(len(self.ports)):
                port = self.ports[next(self._turn) % len(self.ports)]
                try:
                    up_r, up_w = await asyncio.open_connection("127.0.0.1", port)
                    break
                except OSError:
                    continue
            else:
                return
            try:
                await asyncio.gather(_pipe(reader, up_w), _pipe(up_r, writer))
            except asyncio.CancelledError:
                return  # the balancer closing: the task ends here (asyncio logs a callback's cancellation as an error)
            finally:
                up_w.close()
        finally:
            writer.close()
            self._pipes.discard(task)


async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    try:
        while data := await src.read(65536):
            dst.write(data)
            await dst.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            dst.close()
