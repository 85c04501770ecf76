"""This process as one node of a cluster: its Redis and PostgreSQL clients, its rooms, and the
tasks that keep it in step (the stream reader, the heartbeat and health checks, the sweep).

Health: Redis is checked by the heartbeat every second; when it fails, every room is dropped
and edits are refused (4503) until it answers again. PostgreSQL is checked every second too;
while it is away, loaded rooms keep working (Redis is the commit point) but rooms cannot be
loaded and compaction waits. `/healthz` reports both and is unhealthy (503) unless both work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any

import redis
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from common.access import Access
from common.cluster import Cluster, Lease, forever
from common.postgres import DatabaseError, open_pool, redact_url
from common.settings import ClusterSettings
from common.shared_access import SharedRevocations, shared_access

from ..metrics import Metrics
from ..settings import DocBounds, ServerSettings
from .compactor import Compactor
from .rooms import BLOCK_MS, ClusterRooms
from .snapshots import Snapshots
from .streams import RoomStreams
from .writer import StreamWriter

log = logging.getLogger("inhabit.cluster")

BEAT_S = 1.0
MARKS_EVERY = 5
"""Heartbeats between two checks that no loaded room was trimmed past what we read."""
COMMAND_TIMEOUT_S = 2.0


def _redis(url: str, timeout: float, protocol: int = 3) -> Redis:
    return Redis.from_url(url, protocol=protocol, socket_timeout=timeout, socket_connect_timeout=COMMAND_TIMEOUT_S,
                          retry=Retry(NoBackoff(), 0), health_check_interval=0)


class ClusterNode:
    """Builds the cluster-mode seams the app runs on: `access`, `rooms`, `writer`, `cluster`."""

    def __init__(self, settings: ServerSettings, metrics: Metrics, bounds: DocBounds) -> None:
        part = settings.cluster
        assert part.redis_url and part.database_url
        self.settings: ClusterSettings = part
        self.id = uuid.uuid4().hex[:12]
        try:  # fail at start-up, in one line, rather than at the first edit
            redis.Redis.from_url(part.redis_url, socket_connect_timeout=COMMAND_TIMEOUT_S).ping()
        except (RedisError, OSError) as exc:
            raise DatabaseError(f"cannot reach Redis at {redact_url(part.redis_url)}: {exc}") from exc
        self.pool = open_pool(part.database_url, part.pg_pool)
        self.redis = _redis(part.redis_url, COMMAND_TIMEOUT_S)  # the streams' (raw replies), and the blocking reads'
        self.blocking = _redis(part.redis_url, BLOCK_MS / 1000 + COMMAND_TIMEOUT_S)
        self.cluster = Cluster(node=self.id, redis=_redis(part.redis_url, COMMAND_TIMEOUT_S, protocol=2), pool=self.pool,
                               lease_s=part.lease_s)
        secret = settings.secret.get_secret_value() if settings.secret else None
        self.access: Access = shared_access(self.pool, secret)
        self.snapshots = Snapshots(self.pool, settings.versions_kept, settings.disk.room_versions_bytes)
        self.streams = RoomStreams(self.redis, self.blocking, self.id, window_s=part.stream_window_s,
                                   max_entries=part.stream_max_entries)
        positions: dict[str, str] = {}
        self.compactor = Compactor(self.streams, self.snapshots, Lease(self.cluster), part.snapshot_every_s)
        self.writer = StreamWriter(self.streams, self.compactor, positions)
        self.rooms = ClusterRooms(self.snapshots, self.writer, metrics, settings.unload_grace, bounds,
                                  streams=self.streams, positions=positions)
        self.compactor.rooms = self.rooms
        self.writer.on_failed = self.rooms.drop
        self.redis_error: str | None = None
        self.postgres_error: str | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        await self.streams.start_waking()
        self.redis_error = None if await self._beat() else self.redis_error
        self.writer.start()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(forever(run), name=run.__name__) for run in (
            self.rooms.read_forever, self._keep_beating, self._watch_postgres, self.compactor.sweep_forever)]
        log.info("cluster node %s up (Redis %s, PostgreSQL %s)", self.id, redact_url(self.settings.redis_url or ""),
                 redact_url(self.settings.database_url or ""))

    async def _beat(self) -> bool:
        """One heartbeat; True if Redis answered. Also forgets the presence of dead nodes."""
        try:
            alive = await self.streams.heartbeat(self.settings.node_ttl_s)
        except (RedisError, OSError) as exc:
            why = f"Redis is unavailable ({type(exc).__name__}: {exc})"
            if self.redis_error is None:
                self.rooms.drop(None, why)
            self.redis_error = why
            return False
        if self.redis_error is not None or self.writer.unavailable is not None:
            log.warning("Redis is back: taking edits again")
            self.redis_error = self.writer.unavailable = None
        if alive != self.rooms.alive:
            self.rooms.forget_nodes(alive)
        return True

    async def _keep_beating(self) -> None:
        beats = 0
        while True:
            await asyncio.sleep(BEAT_S)
            beats += 1
            if await self._beat() and beats % MARKS_EVERY == 0:
                with contextlib.suppress(RedisError, OSError):
                    await self.rooms.check_marks()

    async def _watch_postgres(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self._ping_postgres)
            except Exception as exc:
                if self.postgres_error is None:
                    log.error("PostgreSQL is unavailable (%s): rooms cannot be loaded and compaction waits", exc)
                self.postgres_error = f"PostgreSQL is unavailable ({type(exc).__name__}: {exc})"
            else:
                if self.postgres_error is not None:
                    log.warning("PostgreSQL is back")
                self.postgres_error = None
            await asyncio.sleep(BEAT_S)

    def _ping_postgres(self) -> None:
        with self.pool.connection(timeout=BEAT_S) as conn:
            conn.execute("SELECT 1")

    def health(self) -> dict[str, Any]:
        """For /healthz: ok only if both Redis and PostgreSQL answer."""
        return {"ok": self.redis_error is None and self.postgres_error is None, "node": self.id,
                "redis": self.redis_error or "ok", "postgres": self.postgres_error or "ok"}

    def gauges(self) -> dict[str, tuple[float, str]]:
        return {**self.compactor.gauges(),
                "cluster_redis_up": (int(self.redis_error is None), "1 while Redis answers."),
                "cluster_postgres_up": (int(self.postgres_error is None), "1 while PostgreSQL answers."),
                "cluster_nodes_alive": (len(self.rooms.alive), "Nodes whose heartbeat this node sees.")}

    async def stop(self) -> None:
        """After the rooms closed (their writer flushed): stop the tasks, then the clients."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.compactor.close()
        if isinstance(self.access.revoked, SharedRevocations):
            self.access.revoked.close()
        with contextlib.suppress(Exception):
            await self.streams.close()
        for client in (self.redis, self.blocking, self.cluster.redis):
            with contextlib.suppress(Exception):
                await client.aclose()
        await asyncio.to_thread(self.pool.close)
