"""The Redis side of cluster mode: one stream per room, read by every node that has the room loaded.

Keys (room names are `[A-Za-z0-9_-]`; the `{room}` hash tag keeps a room's keys together):
- `inhabit:{room}:s` the room's stream. Entry fields: `n` the node that appended it, `m` one
  y-websocket message exactly as the wire carries it (a sync update or an awareness update),
  and for awareness `i`, the token identity of the connection that owns those client ids; for an
  update inserting chat lines `i` is who wrote them (a `common.actor.Actor` as JSON), else empty.
- `inhabit:{room}:m` a hash: `trimmed` (entries below this id may be gone: the trim mark).
- `inhabit:dirty` a sorted set: rooms whose stream has entries not yet compacted, scored by
  when the oldest of them was appended (ms, Redis's clock).
- `inhabit:nodes` a sorted set of node heartbeats (ms); `inhabit:node:<id>:wake` a one-entry
  stream a node appends to, to wake its own blocked read when it starts reading a new room.

Every write that needs two steps to agree is one Lua script (atomic in Redis): an append
checks the stream's bound and marks the room dirty; a trim raises the trim mark with it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple, cast

from redis.asyncio import Redis
from redis.exceptions import NoScriptError, ResponseError

from common.cluster import PREFIX, text

from .link import Link

DIRTY = PREFIX + "dirty"
NODES = PREFIX + "nodes"
READ_COUNT = 1000
"""Entries per stream per read (a busier stream is read on in the next read)."""
REPLAY_CHUNK = 2000

_IDS = """
local function parse(id) local ms, seq = string.match(id, '^(%d+)-(%d+)$'); return tonumber(ms), tonumber(seq) end
local function lt(a, b) local am, as = parse(a); local bm, bs = parse(b); return am < bm or (am == bm and as < bs) end
local function now() local t = redis.call('TIME'); return t[1] * 1000 + math.floor(t[2] / 1000) end
"""

APPEND = _IDS + """
-- KEYS: stream, dirty; ARGV: node, max entries, room, then (message, identity) pairs
local n = redis.call('XLEN', KEYS[1])
if n + (#ARGV - 3) / 2 > tonumber(ARGV[2]) then return redis.error_reply('FULL the room stream holds ' .. n .. ' entries') end
for i = 4, #ARGV, 2 do
  if ARGV[i + 1] == '' then redis.call('XADD', KEYS[1], '*', 'n', ARGV[1], 'm', ARGV[i])
  else redis.call('XADD', KEYS[1], '*', 'n', ARGV[1], 'm', ARGV[i], 'i', ARGV[i + 1]) end
end
redis.call('ZADD', KEYS[2], 'NX', now(), ARGV[3])
return n + (#ARGV - 3) / 2
"""

TRIM = _IDS + """
-- KEYS: stream, meta, dirty; ARGV: min id kept, room, id covered by the stored snapshot
local mark = redis.call('HGET', KEYS[2], 'trimmed')
if not mark or lt(mark, ARGV[1]) then redis.call('HSET', KEYS[2], 'trimmed', ARGV[1]) end
redis.call('XTRIM', KEYS[1], 'MINID', ARGV[1])
local after = redis.call('XRANGE', KEYS[1], '(' .. ARGV[3], '+', 'COUNT', 1)
if #after == 0 then redis.call('ZREM', KEYS[3], ARGV[2])
else redis.call('ZADD', KEYS[3], 'XX', parse(after[1][1]), ARGV[2]) end
return redis.call('XLEN', KEYS[1])
"""

HEARTBEAT = _IDS + """
-- KEYS: nodes; ARGV: node, ttl ms. Returns the nodes alive (this one included)
local t = now()
redis.call('ZADD', KEYS[1], t, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', t - 86400000)
return redis.call('ZRANGEBYSCORE', KEYS[1], t - tonumber(ARGV[2]), '+inf')
"""

DUE = _IDS + """
-- KEYS: dirty; ARGV: age ms, limit. Rooms with entries older than that, not yet compacted
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now() - tonumber(ARGV[1]), 'LIMIT', 0, tonumber(ARGV[2]))
"""


def stream_key(room: str) -> str:
    return f"{PREFIX}{{{room}}}:s"


def meta_key(room: str) -> str:
    return f"{PREFIX}{{{room}}}:m"


def sid(entry_id: str) -> tuple[int, int]:
    """A stream id as a comparable pair (ms, seq)."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


class Entry(NamedTuple):
    id: str
    node: bytes
    message: bytes
    identity: str


class Trimmed(Exception):
    """Entries after the asked position may have been trimmed: read the snapshot again."""


class StreamFull(Exception):
    """The room's stream reached its bound: compaction is behind (PostgreSQL away?)."""


def _entries(raw: Iterable[list]) -> list[Entry]:
    """Entries from a raw XRANGE/XREAD reply (our fields, in the order we write them)."""
    out = []
    for eid, f in raw:
        out.append(Entry(eid.decode(), f[1], f[3], f[5].decode() if len(f) > 4 else ""))
    return out


def _raw(response: object, **options: object) -> object:
    return response


class RoomStreams:
    """Append to, read, replay and trim rooms' streams; heartbeats; the rooms due for compaction."""

    def __init__(self, redis: Redis, blocking: Redis, node: str, *, window_s: float, max_entries: int) -> None:
        self.redis = redis
        self.blocking = blocking  # its own connections: a blocked read holds one
        self.node = node
        self.window_ms = int(window_s * 1000)
        self.max_entries = max_entries
        for client in (redis, blocking):  # our fields are fixed: skip redis-py's dict building
            client.set_response_callback("XREAD", _raw)
            client.set_response_callback("XRANGE", _raw)
        self._writes = Link(redis)  # the appends' own connection (the writer makes one call at a time)
        self._reads = Link(blocking)  # the reader's (one blocking read at a time)
        self._append = redis.register_script(APPEND)
        self._trim = redis.register_script(TRIM)
        self._heartbeat = redis.register_script(HEARTBEAT)
        self._due = redis.register_script(DUE)
        self.wake_key = f"{PREFIX}node:{node}:wake"
        self.wake_at = "0-0"
        self.reads = 0
        self.entries_read = 0

    # appending: the commit point

    async def append(self, batch: dict[str, list[tuple[bytes, str]]]) -> dict[str, int | Exception]:
        """Append each room's messages (in order, one script call per room, all in one round trip).
        Returns per room the stream's new length, or the exception that room's append raised
        (StreamFull; the rest is a lost connection and raises for the whole batch)."""
        rooms = list(batch)
        results = await self._writes.call([self._append_args(room, batch[room]) for room in rooms])  # one round trip
        if any(isinstance(r, NoScriptError) for r in results):  # Redis restarted: load the script, once
            await self.redis.script_load(APPEND)
            retry = {room: batch[room] for room, r in zip(rooms, results, strict=True) if isinstance(r, NoScriptError)}
            return {**dict(zip(rooms, results, strict=True)), **await self.append(retry)}
        out: dict[str, int | Exception] = {}
        for room, r in zip(rooms, results, strict=True):
            if isinstance(r, ResponseError) and str(r).startswith("FULL"):
                out[room] = StreamFull(f"{str(r)[5:]}; compaction is behind")
            elif isinstance(r, Exception):
                raise r
            else:
                out[room] = int(r)
        return out

    def _append_args(self, room: str, messages: list[tuple[bytes, str]]) -> list[bytes | str | int]:
        args: list[bytes | str | int] = ["EVALSHA", self._append.sha, 2, stream_key(room), DIRTY, self.node, self.max_entries, room]
        for message, identity in messages:
            args += (message, identity)
        return args

    # reading: every node reads the rooms it has loaded

    async def read(self, positions: dict[str, str], block_ms: int) -> list[tuple[str, list[Entry]]]:
        """New entries of the rooms at `positions` (room -> last id applied), waiting up to
        `block_ms` for the first; `wake()` ends the wait early."""
        keys = [stream_key(room) for room in positions]
        keys.append(self.wake_key)
        command: list[bytes | str | int] = ["XREAD", "COUNT", READ_COUNT, "BLOCK", block_ms, "STREAMS", *keys, *positions.values(), self.wake_at]
        reply, = await self._reads.call([command], block_ms / 1000 + self._writes.timeout_s)
        if isinstance(reply, Exception):
            raise reply
        self.reads += 1
        out = []
        for key, raw in (reply.items() if isinstance(reply, dict) else reply or ()):  # RESP3 a map, RESP2 pairs
            if key == self.wake_key.encode():
                self.wake_at = raw[-1][0].decode()
                continue
            entries = _entries(raw)
            self.entries_read += len(entries)
            out.append((key[len(PREFIX) + 1:-3].decode(), entries))
        return out

    async def close(self) -> None:
        for link in (self._writes, self._reads):
            await link.close()

    async def start_waking(self) -> None:
        """Position the wake stream at its end (only later wakes count)."""
        self.wake_at = text(await self.redis.xadd(self.wake_key, {"w": b""}, maxlen=1))

    async def wake(self) -> None:
        await self.redis.xadd(self.wake_key, {"w": b""}, maxlen=1)

    async def replay(self, room: str, after: str) -> list[Entry]:
        """Every entry after `after` (the id a snapshot covers), in order. Raises Trimmed if
        some of them may be gone (a newer snapshot covers them: load that one instead)."""
        out: list[Entry] = []
        start = "-" if after == "0-0" else "(" + after
        while True:
            pipe = self.redis.pipeline(transaction=True)  # the mark and the entries, as of one moment
            pipe.hget(meta_key(room), "trimmed")
            pipe.xrange(stream_key(room), start, "+", count=REPLAY_CHUNK)
            mark, raw = await pipe.execute()
            if mark is not None and sid(mark.decode()) > sid(after):
                raise Trimmed(room)
            chunk = _entries(raw)
            out += chunk
            if len(chunk) < REPLAY_CHUNK:
                return out
            start = "(" + chunk[-1].id

    async def marks(self, rooms: list[str]) -> list[str | None]:
        """The trim mark of each room (entries below it may be gone)."""
        pipe = self.redis.pipeline(transaction=False)
        for room in rooms:
            pipe.hget(meta_key(room), "trimmed")
        return [m.decode() if m is not None else None for m in await pipe.execute()]

    # compaction's side

    def trim_below(self, covered: str) -> str:
        """The lowest id a trim keeps after a snapshot covering `covered`: the safety window."""
        ms, _ = sid(covered)
        return f"{max(0, ms - self.window_ms)}-0"

    async def trim(self, room: str, covered: str) -> int:
        """After a snapshot covering every entry up to `covered` is stored: drop the entries
        older than the window before it; the room stays dirty if newer entries exist."""
        return int(await self._trim(keys=[stream_key(room), meta_key(room), DIRTY], args=[self.trim_below(covered), room, covered]))

    async def due(self, age_s: float, limit: int = 16) -> list[str]:
        """Rooms with entries appended more than `age_s` ago and not compacted since."""
        return [r.decode() for r in await self._due(keys=[DIRTY], args=[int(age_s * 1000), limit])]

    async def last_id(self, room: str) -> str | None:
        raw = await self.redis.xrevrange(stream_key(room), "+", "-", count=1)
        return text(cast(bytes, raw[0][0])) if raw else None

    # liveness

    async def heartbeat(self, ttl_s: float) -> set[str]:
        """Say this node is alive; returns every node alive (beat within `ttl_s`)."""
        return {n.decode() for n in await self._heartbeat(keys=[NODES], args=[self.node, int(ttl_s * 1000)])}
