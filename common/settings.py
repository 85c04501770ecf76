"""The one settings model: every knob of `inhabit serve`, read once at start-up.

Sources, strongest first: command-line flags (`inhabit/cli.py` maps each field to a flag),
environment variables with the `INHABIT_` prefix (`INHABIT_PORT=9000`), then the defaults
below, which are safe: loopback, auth on. Nothing else in the code reads the environment
for our settings (the `anthropic` SDK reads its own `ANTHROPIC_*` variables).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_MODEL = "claude-sonnet-5"


class Settings(BaseSettings):
    """Everything `inhabit serve` can be told; a field's description is its `--help` line."""

    model_config = SettingsConfigDict(env_prefix="INHABIT_", extra="ignore")

    # where and how to listen
    host: str = Field(default="127.0.0.1", description="interface to listen on")
    port: int = Field(default=8000, ge=0, le=65535, description="TCP port")
    data: Path = Field(default=Path("./data"), description="data folder (databases, token secret)")
    open: bool = Field(default=False, description="disable authentication: every peer edits (trusted networks only)")
    public_url: str | None = Field(default=None, description="base URL printed for browsers, when behind a proxy")
    log_level: str = Field(default="warning", description="uvicorn log level")

    # rooms
    max_message: int = Field(default=8 * 1024 * 1024, ge=1024, description="largest websocket message in bytes (bigger: close 1009)")
    unload_grace: float = Field(default=30.0, ge=0, description="seconds an empty room stays loaded")
    compact_every: int = Field(default=500, ge=1, description="squash a room's stored history after this many updates")
    ping_interval: float = Field(default=20.0, gt=0, description="seconds between websocket keepalive pings")

    # bounds per connection and per room (what one hostile peer can cost everyone else)
    send_queue_bytes: int = Field(default=16 * 1024 * 1024, ge=64 * 1024, description="bytes written to one connection and not yet taken by it before it is closed as too slow")
    recv_bytes_per_s: int = Field(default=4 * 1024 * 1024, ge=1024, description="sustained bytes/s one connection may send (bursts up to max_message)")
    recv_messages_per_s: int = Field(default=500, ge=1, description="sustained messages/s one connection may send")
    awareness_bytes: int = Field(default=256 * 1024, ge=1024, description="largest awareness (presence) state of one client")
    awareness_ids: int = Field(default=8, ge=1, description="awareness client ids one connection may hold")
    max_doc_bytes: int = Field(default=64 * 1024 * 1024, ge=1024 * 1024, description="a room's document size limit; past it the room takes no more edits")
    compact_bytes: int = Field(default=8 * 1024 * 1024, ge=64 * 1024, description="squash a room's stored history once its updates exceed this many bytes")
    versions_kept: int = Field(default=10, ge=0, description="snapshots kept per room so a wipe can be rolled back")

    # the hosted agent
    model: str = Field(default=DEFAULT_MODEL, description="Messages API model the agent uses")
    max_turns: int = Field(default=8, ge=1, description="model calls per agent run")
    max_run_tokens: int = Field(default=200_000, ge=1, description="input + output tokens per agent run")
    agent_idle_s: float = Field(default=300.0, gt=0, description="seconds a hosted agent stays in an idle room")
    agent_peers: int = Field(default=32, ge=1, description="hosted agent peers resident at once (the idlest leave first)")
    agent_run_s: float = Field(default=300.0, gt=0, description="wall-time bound on one whole agent run")
    agent_tool_calls: int = Field(default=24, ge=1, description="tool calls (search + execute) per agent run")
    prompts_per_minute: int = Field(default=6, ge=1, description="prompts one token may post per minute in a room")
    room_prompts_per_minute: int = Field(default=30, ge=1, description="prompts a room accepts per minute")
    prompt_queue: int = Field(default=8, ge=1, description="prompts waiting per room before new ones get 429")

    # MCP clients (/rooms/NAME/mcp): each session is a peer in its room
    mcp_sessions: int = Field(default=64, ge=1, description="MCP sessions open at once, all rooms together")
    mcp_room_sessions: int = Field(default=8, ge=1, description="MCP sessions open at once in one room")
    mcp_token_sessions: int = Field(default=4, ge=1, description="MCP sessions one token may hold open in a room")
    mcp_idle_s: float = Field(default=600.0, gt=0, description="seconds an MCP session may go without a request or open stream before it ends and its peer leaves")
    mcp_calls_per_minute: int = Field(default=60, ge=1, description="MCP tool calls one token may make per minute in a room")
    mcp_body_bytes: int = Field(default=256 * 1024, ge=4096, description="largest MCP request body in bytes (bigger: 413)")

    # behaviours: programs the agent leaves running in a room
    behaviours_per_room: int = Field(default=8, ge=1, description="behaviours one room may have")
    behaviour_firings_per_minute: int = Field(default=60, ge=1, description="firings of one behaviour per minute (more events wait, merged)")
    behaviour_failures: int = Field(default=3, ge=1, description="failed firings in a row before a behaviour pauses itself")
    behaviour_state_bytes: int = Field(default=16 * 1024, ge=256, description="largest state (JSON) one behaviour keeps")
    behaviour_firings_kept: int = Field(default=50, ge=1, description="firing records kept per behaviour")
    behaviour_chain: int = Field(default=8, ge=1, description="firings in a row caused by behaviours' writes before the loop guard pauses one")

    # cluster mode: several `inhabit serve` processes share every room (README "Cluster")
    redis_url: str | None = Field(default=None, json_schema_extra={"flag": "--redis"},
                                  description="Redis for live traffic (redis://host:6379/0, unix:///path); with --database: cluster mode")
    database_url: str | None = Field(default=None, json_schema_extra={"flag": "--database"},
                                     description="PostgreSQL for durable state (postgresql://user@host/db); with --redis: cluster mode")
    secret: SecretStr | None = Field(default=None, description="token secret (16+ characters) every node shares; default: <data>/secret.key, "
                                     "or in cluster mode one kept in PostgreSQL (prefer INHABIT_SECRET to the flag)")
    node_ttl_s: float = Field(default=10.0, gt=0, description="cluster: seconds without a heartbeat before a node counts as dead and its peers' presence goes")
    lease_s: float = Field(default=10.0, gt=0, description="cluster: lease of a room's compaction worker and of its agent, taken over this long after its holder dies")
    snapshot_every_s: float = Field(default=30.0, gt=0, description="cluster: longest an edit waits in Redis before it is compacted into PostgreSQL (while PostgreSQL is up)")
    stream_window_s: float = Field(default=30.0, gt=0, description="cluster: seconds of a room's stream kept after compaction (presence is replayed from it)")
    stream_max_entries: int = Field(default=100_000, ge=1000, description="cluster: a room's stream length at which its edits are refused (4503) until compaction catches up")
    pg_pool: int = Field(default=8, ge=2, description="cluster: PostgreSQL connections per node")

    @model_validator(mode="after")
    def _cluster_needs_both(self) -> Settings:
        if bool(self.redis_url) != bool(self.database_url):
            raise ValueError("cluster mode needs both --redis and --database (INHABIT_REDIS_URL, INHABIT_DATABASE_URL), or neither")
        return self

    @property
    def clustered(self) -> bool:
        """Several processes share the rooms through Redis and PostgreSQL (else: one process, SQLite)."""
        return bool(self.redis_url and self.database_url)

    @property
    def public_base(self) -> str:
        """The base URL people open (`--public-url`, else this host and port)."""
        if self.public_url:
            return self.public_url.rstrip("/")
        return f"http://{self.loopback_host}:{self.port}"

    @property
    def internal_ws(self) -> str:
        """Where in-process peers (the hosted agent) connect: this server, never the proxy."""
        return f"ws://{self.loopback_host}:{self.port}/rooms"

    @property
    def loopback_host(self) -> str:
        return "127.0.0.1" if self.host in ("0.0.0.0", "::", "", "localhost") else self.host
