"""What every part of a cluster node shares: its id, its Redis and PostgreSQL clients, and leases.

The rooms server builds this (`server/cluster/node.py`) and hands it to plugins in their `Host`,
so the agent keeps its run records in the same PostgreSQL and takes its per-room lease in the
same Redis, without importing the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from psycopg_pool import ConnectionPool
from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger("inhabit.cluster")

PREFIX = "inhabit:"
"""Every Redis key we use starts with this."""


@dataclass(frozen=True)
class Cluster:
    """This process's place in the cluster."""

    node: str
    """A fresh random id per process start: names this node in streams, heartbeats and leases."""
    redis: Redis
    """Commands with short timeouts (blocking reads shorter than them), RESP2 replies as redis-py documents them."""
    pool: ConnectionPool
    lease_s: float
    """How long a lease lasts unless renewed: a dead holder's lease is taken over this long after."""


def text(reply: bytes | str) -> str:
    """A Redis reply as text (our clients keep bytes; redis-py's types also allow str)."""
    return reply.decode() if isinstance(reply, bytes) else reply


async def forever(run: Callable[[], Awaitable[None]], retry_s: float = 1.0) -> None:
    """Run one of a node's background loops for the process's life: a crash (our bug) is
    logged and the loop started again, never silently lost."""
    while True:
        try:
            await run()
        except Exception:
            log.exception("cluster loop %s crashed; restarting it", getattr(run, "__name__", run))
            await asyncio.sleep(retry_s)


_RENEW = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0"
_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


class Lease:
    """Leases in Redis (SET key node NX PX): at most one holder of a key at a time; only the
    holder renews or releases it (compare-and-act scripts), and a holder that dies loses it
    when it expires, so another node takes over. Renew well within the lease (a third of it)."""

    def __init__(self, cluster: Cluster) -> None:
        self.redis = cluster.redis
        self.node = cluster.node
        self.ms = int(cluster.lease_s * 1000)
        self._renew = self.redis.register_script(_RENEW)
        self._release = self.redis.register_script(_RELEASE)

    async def acquire(self, key: str) -> bool:
        return bool(await self.redis.set(key, self.node, nx=True, px=self.ms))

    async def renew(self, key: str) -> bool:
        """True while we still hold it (False: it expired and may be someone else's now)."""
        return bool(await self._renew(keys=[key], args=[self.node, self.ms]))

    async def release(self, key: str) -> None:
        await self._release(keys=[key], args=[self.node])

    async def holder(self, key: str) -> str | None:
        value = await self.redis.get(key)
        return text(value) if value is not None else None

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[bool]:
        """`async with lease.hold(key) as held:` — if `held`, the lease is ours and renewed in
        the background until the block ends (then released). A block that outlives a lost
        lease is not interrupted: what it does must be safe to overlap (compaction is)."""
        if not await self.acquire(key):
            yield False
            return
        renewer = asyncio.get_running_loop().create_task(self._keep(key))
        try:
            yield True
        finally:
            renewer.cancel()
            with contextlib.suppress(RedisError, OSError):
                await self.release(key)

    async def _keep(self, key: str) -> None:
        while True:
            await asyncio.sleep(self.ms / 3000)
            try:
                if not await self.renew(key):
                    log.warning("lost the lease %s while holding it", key)
                    return
            except (RedisError, OSError) as exc:
                log.warning("cannot renew the lease %s: %s", key, exc)
