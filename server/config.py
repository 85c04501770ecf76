"""Server settings, validated once at start-up (never on the per-message hot path)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field


class ServerConfig(BaseModel):
    """Everything `inhabit serve` can be told. Defaults are safe: loopback and auth on."""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    data: Path = Path("./data")
    open: bool = False
    """Auth off: every connection is an editor. Only for trusted networks."""
    max_message: int = Field(default=8 * 1024 * 1024, ge=1024)
    """Largest accepted websocket message in bytes; bigger ones close the socket with 1009."""
    unload_grace: float = Field(default=30.0, ge=0)
    """Seconds a room with no connections stays in memory before it is flushed and dropped."""
    public_url: str | None = None
    """Base URL printed for browsers, when the server sits behind a proxy."""
    flush_interval: float = Field(default=0.05, gt=0, le=0.1)
    """How often the store writer commits queued updates (<= 100 ms by contract)."""
    compact_every: int = Field(default=500, ge=1)
    """Squash a room's history into one snapshot after this many stored updates."""
    send_queue: int = Field(default=1024, ge=8)
    """Messages queued for one connection before it is judged too slow and closed."""
    ping_interval: float = 20.0

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}"
