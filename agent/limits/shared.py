"""Prompt rate limits shared by every node of a cluster: the token buckets of
`agent.limits.admission.RateLimiter`, kept in Redis and taken in one script.

Why: with per-node buckets, a link could post its per-minute budget once per node behind a load
balancer. Here all nodes take from the same buckets, "all or none" across the buckets a prompt
counts against (a link's, and the room's viewers'), atomically in Redis with Redis's clock.
Buckets are hashes under the room's key tag (`inhabit:{room}:rate:…`) that expire once they
would be full again, so memory is bounded by the prompts of the last minute.
"""

from __future__ import annotations

from common.cluster import PREFIX, Cluster

WINDOW_S = 60.0

# KEYS: bucket keys. ARGV: per bucket, its capacity (per minute) and 1 if the prompt must take
# from it (0: take only if it has some, never refuse: editors and the viewers' budget).
# Returns {1} when taken, or {0, wait seconds as text, index of the refusing bucket}.
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local levels = {}
for i = 1, #KEYS do
  local cap = tonumber(ARGV[2 * i - 1])
  local v = redis.call('HMGET', KEYS[i], 'tokens', 'at')
  local tokens, at = tonumber(v[1]) or cap, tonumber(v[2]) or now
  levels[i] = math.min(cap, tokens + (now - at) * cap / 60)
  if ARGV[2 * i] == '1' and levels[i] < 1 then
    return {0, tostring((1 - levels[i]) * 60 / cap), i}
  end
end
for i = 1, #KEYS do
  if ARGV[2 * i] == '1' or levels[i] >= 1 then
    redis.call('HSET', KEYS[i], 'tokens', tostring(levels[i] - 1), 'at', tostring(now))
    redis.call('PEXPIRE', KEYS[i], 60000)
  end
end
return {1}
"""

_GIVE_BACK = """
for i = 1, #KEYS do
  local cap = tonumber(ARGV[i])
  local tokens = tonumber(redis.call('HGET', KEYS[i], 'tokens'))
  if tokens then redis.call('HSET', KEYS[i], 'tokens', tostring(math.min(cap, tokens + 1))) end
end
return 1
"""

Bucket = tuple[str, int, bool]
"""A bucket's name within its room, its capacity per minute, and whether the prompt must take from it."""


class SharedBuckets:
    """Rate buckets in the cluster's Redis."""

    def __init__(self, cluster: Cluster) -> None:
        self._take = cluster.redis.register_script(_TAKE)
        self._give_back = cluster.redis.register_script(_GIVE_BACK)

    @staticmethod
    def _key(room: str, name: str) -> str:
        return f"{PREFIX}{{{room}}}:rate:{name}"

    async def take(self, room: str, buckets: list[Bucket]) -> tuple[float, int]:
        """(0, -1) once taken from all of them; else the seconds to wait and the index of the
        bucket that refused (nothing taken)."""
        args: list[int] = []
        for _, cap, required in buckets:
            args += [cap, int(required)]
        reply = await self._take(keys=[self._key(room, b[0]) for b in buckets], args=args)
        return (0.0, -1) if int(reply[0]) == 1 else (float(reply[1]), int(reply[2]) - 1)

    async def give_back(self, room: str, buckets: list[Bucket]) -> None:
        await self._give_back(keys=[self._key(room, b[0]) for b in buckets], args=[b[1] for b in buckets])
