"""The rooms server's settings: where it listens and keeps its data, who may edit, how long rooms
live, plus the parts its modules own (a connection's bounds, a room's history, the cluster).

`create_app` takes this model; `inhabit/settings.py` composes it with the agent's parts and
reads it once from flags and `INHABIT_*` variables (every `setting(...)` field is one of each).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, SecretStr

from common.settings import ClusterSettings, setting

from .conn import ConnectionLimits
from .history import DocBounds


class ServerSettings(BaseModel):
    """The rooms server: where it listens and keeps its data, who may edit, how long rooms stay.

    Its parts below are owned by the modules that read them. The defaults are safe: loopback, auth on."""

    host: str = setting("127.0.0.1", "interface to listen on", name="host")
    port: int = setting(8000, "TCP port", name="port", ge=0, le=65535)
    data: Path = setting(Path("./data"), "data folder (databases, token secret)", name="data")
    open: bool = setting(False, "disable authentication: every peer edits (trusted networks only)", name="open")
    public_url: str | None = setting(None, "base URL printed for browsers and by `inhabit mcp`, when behind a proxy", name="public_url")
    log_level: str = setting("warning", "uvicorn log level", name="log_level")
    secret: SecretStr | None = setting(None, "token secret (16+ characters) every node shares; default: <data>/secret.key, "
                                       "or in cluster mode one kept in PostgreSQL (prefer INHABIT_SECRET to the flag)", name="secret")
    unload_grace: float = setting(30.0, "seconds an empty room stays loaded", name="unload_grace", ge=0)
    versions_kept: int = setting(10, "earlier versions kept per room (one per compaction of a non-empty canvas), so a wipe can be "
                                 "rolled back (0: none)", name="versions_kept", ge=0)

    connections: ConnectionLimits = Field(default_factory=ConnectionLimits)
    history: DocBounds = Field(default_factory=DocBounds)
    cluster: ClusterSettings = Field(default_factory=ClusterSettings)

    @property
    def clustered(self) -> bool:
        """Several processes share the rooms through Redis and PostgreSQL (else: one process, SQLite)."""
        return self.cluster.enabled

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
