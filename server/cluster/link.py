"""Link: one Redis connection of a node's own, for its two hot paths (the append, which is the
commit point, and the blocking stream read), bypassing redis-py's per-command machinery.

Why: at about one call per update, redis-py's `execute_command` costs a node ~30-40 µs of CPU
per call on top of the round trip itself (a pool checkout and release with their events, a
retry wrapper, a new task per send for the socket timeout, observability hooks, response
callbacks), the largest per-update cost of cluster mode after the websocket writes
(bench/README.md, "bench/cluster.py"). Here a call is redis-py's own connection (which still
connects, authenticates, speaks RESP3 and parses replies, in C with hiredis): the commands go
out in one write, their replies are read in order, one `asyncio.timeout` bounds the exchange.

Failures are as with the client: an error reply (a script's error, NOSCRIPT) is handed back as
its `ResponseError` in its place; anything else (timeout, lost connection, the caller
cancelled) drops the connection and raises, so a half-read reply can never be taken for the
next call's, and the next call connects afresh.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeout

Command = Sequence[bytes | str | int]


class Link:
    """A dedicated connection made with `client`'s settings (its URL, auth, protocol, TLS)."""

    def __init__(self, client: Redis, timeout_s: float | None = None) -> None:
        pool = client.connection_pool
        kwargs = dict(pool.connection_kwargs)
        self.timeout_s = timeout_s if timeout_s is not None else kwargs.get("socket_timeout") or 5.0
        kwargs["socket_timeout"] = None  # the exchange's own timeout bounds it (one timer, no task per send)
        self._conn = pool.connection_class(**kwargs)

    async def call(self, commands: Sequence[Command], timeout_s: float | None = None) -> list[Any]:
        """Send `commands` in one write; their replies in order (an error reply as its exception;
        the others as Redis sent them: bytes, ints, lists, maps)."""
        conn = self._conn
        limit = self.timeout_s if timeout_s is None else timeout_s
        try:
            async with asyncio.timeout(limit):
                await conn.send_packed_command(conn.pack_commands(commands), check_health=False)
                out: list[Any] = []
                for _ in commands:
                    try:
                        out.append(await conn.read_response())
                    except ResponseError as exc:  # the whole reply was read: the connection is in step
                        out.append(exc)
                return out
        except TimeoutError:
            await conn.disconnect(nowait=True)
            raise RedisTimeout(f"no reply from Redis within {limit:g} s") from None
        except BaseException:
            await conn.disconnect(nowait=True)
            raise

    async def close(self) -> None:
        await self._conn.disconnect()
