"""How a part of the code declares its settings, and the cluster's part.

Each part owns its settings model next to the code that reads it (the rooms server's in
`server/settings.py`, the agent's, prompts', behaviours' and MCP's in their `agent/` packages,
the cluster's here, since the server and the token commands both need it); `inhabit/settings.py`
composes them and reads them once at start-up. A field declared with `setting(...)` is a knob of
`inhabit serve`: its `name` is flat and unique across parts, so it is the `--name` flag and the
`INHABIT_NAME` environment variable, and its description is its `--help` line. Fields declared
the usual way are internal bounds with a default, not settings.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, model_validator


def setting(default: Any, description: str, *, name: str, flag: str | None = None, **bounds: Any) -> Any:
    """A settings field: `name` is its flag (`--name`) and variable (`INHABIT_NAME`), `flag` an
    extra, shorter flag (`--redis`), `bounds` pydantic's constraints (`ge=1`, `gt=0`)."""
    extra: dict[str, Any] = {"setting": name} if flag is None else {"setting": name, "flag": flag}
    return Field(default=default, description=description, json_schema_extra=extra, **bounds)


class ClusterSettings(BaseModel):
    """Cluster mode: several `inhabit serve` processes share every room through Redis and PostgreSQL (README "Cluster")."""

    redis_url: str | None = setting(None, "Redis for live traffic (redis://host:6379/0, unix:///path); with --database: cluster mode",
                                    name="redis_url", flag="--redis")
    database_url: str | None = setting(None, "PostgreSQL for durable state (postgresql://user@host/db); with --redis: cluster mode",
                                       name="database_url", flag="--database")
    node_ttl_s: float = setting(10.0, "cluster: seconds without a heartbeat before a node counts as dead and its peers' presence goes",
                                name="node_ttl_s", gt=0)
    lease_s: float = setting(10.0, "cluster: lease of a room's compaction worker and of its agent, taken over this long after its holder dies",
                             name="lease_s", gt=0)
    snapshot_every_s: float = setting(30.0, "cluster: longest an edit waits in Redis before it is compacted into PostgreSQL (while PostgreSQL is up)",
                                      name="snapshot_every_s", gt=0)
    stream_window_s: float = setting(30.0, "cluster: seconds of a room's stream kept after compaction (presence is replayed from it)",
                                     name="stream_window_s", gt=0)
    stream_max_entries: int = setting(100_000, "cluster: a room's stream length at which its edits are refused (4503) until compaction catches up",
                                      name="stream_max_entries", ge=1000)
    pg_pool: int = setting(8, "cluster: PostgreSQL connections per node", name="pg_pool", ge=2)

    @model_validator(mode="after")
    def _needs_both(self) -> ClusterSettings:
        if bool(self.redis_url) != bool(self.database_url):
            raise ValueError("cluster mode needs both --redis and --database (INHABIT_REDIS_URL, INHABIT_DATABASE_URL), or neither")
        return self

    @property
    def enabled(self) -> bool:
        """Several processes share the rooms through Redis and PostgreSQL (else: one process, SQLite)."""
        return bool(self.redis_url and self.database_url)
