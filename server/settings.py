"""The rooms server's settings: where it listens and keeps its data, who may edit, how long rooms
live, and its parts: a connection's bounds (`Conn`, `websocket`), a room's history (`Room`), what
the data may cost on disk (`common.disk`) and the cluster (`common.settings`).

`create_app` takes `ServerSettings`; `inhabit/settings.py` composes it with the agent's parts
and reads it once from flags and `INHABIT_*` variables (every `setting(...)` field is one of
each). This module imports nothing of the server, so every module may take its part from here
and the command line builds its flags without importing the rooms.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from common.disk import DiskLimits
from common.settings import ClusterSettings, setting

FLOOD_S = 5
"""Seconds a connection may be held back by its receive rate without pause before it is closed."""

MIN_COMPACT_BYTES = 64 * 1024
"""Below this, appended updates are cheaper to keep than a re-encoded snapshot."""


class DocBounds(BaseModel):
    """When a room's stored history is squashed, and how big its document may get.

    Settings of `inhabit serve`; `Room` enforces them."""

    model_config = ConfigDict(frozen=True)

    compact_every: int = setting(500, "squash a room's stored history into one snapshot after this many updates",
                                 name="compact_every", ge=1)
    compact_bytes: int = setting(8 * 1024 * 1024, "squash a room's stored history once its updates since the last snapshot outweigh "
                                 f"that snapshot or this many bytes, whichever is smaller (at least {MIN_COMPACT_BYTES // 1024} KiB)",
                                 name="compact_bytes", ge=64 * 1024)
    max_doc_bytes: int = setting(64 * 1024 * 1024, "a room's document size limit in bytes; an edit that would pass it closes its sender's "
                                 "connection (4413): the room takes no more edits (its chat is trimmed first)", name="max_doc_bytes", ge=1024 * 1024)
    chat_lines: int = setting(200, "chat lines a room's document keeps; past it (or --chat-doc-bytes) the server removes the oldest, "
                              "down to three quarters, into the store (GET /rooms/NAME/chat)", name="chat_lines", ge=1)
    chat_doc_bytes: int = setting(256 * 1024, "bytes of chat lines a room's document keeps (see --chat-lines)", name="chat_doc_bytes", ge=1024)
    chat_bytes_per_minute: int = setting(64 * 1024, "bytes of chat lines one link may add to a room per minute (bursts up to a minute's "
                                         "worth); lines past it are removed before anybody else sees them", name="chat_bytes_per_minute", ge=256)
    widget_doc_bytes: int = setting(256 * 1024, "bytes of widgets (text and buttons, each entry's JSON) a room's document holds, besides "
                                    "their count (500); what an edit adds past either is removed before anybody else sees it",
                                    name="widget_doc_bytes", ge=4096)
    chat_kept_bytes: int = setting(16 * 1024 * 1024, "bytes of older chat lines kept in the store per room (the oldest go first)",
                                   name="chat_kept_bytes", ge=0)

    def compact_after(self, snapshot_bytes: int) -> int:
        """Compact once the updates since the snapshot outweigh it (or `compact_bytes`): the
        file stays within a small multiple of the document, and the cost of re-encoding is
        amortised over as many bytes as it writes."""
        return min(self.compact_bytes, max(snapshot_bytes, MIN_COMPACT_BYTES))


class ConnectionLimits(BaseModel):
    """What one websocket connection may cost everyone else.

    Settings of `inhabit serve`: `server.websocket` enforces the receive side, `Conn` and the room the rest."""

    max_message: int = setting(8 * 1024 * 1024, "largest websocket message in bytes (bigger: close 1009)", name="max_message", ge=1024)
    ping_interval: float = setting(20.0, "seconds between websocket keepalive pings; a peer that does not answer one within as long is dropped",
                                   name="ping_interval", gt=0)
    send_queue_bytes: int = setting(16 * 1024 * 1024, "bytes written to one connection and not yet taken by it before it is closed as too slow (1013)",
                                    name="send_queue_bytes", ge=64 * 1024)
    recv_bytes_per_s: int = setting(4 * 1024 * 1024, "sustained bytes/s one connection may send (bursts up to --max-message); a faster sender "
                                    f"is slowed down, and closed (1008) once held back for {FLOOD_S} s", name="recv_bytes_per_s", ge=1024)
    recv_messages_per_s: int = setting(500, "sustained messages/s one connection may send (bursts up to one second's worth); a faster "
                                       f"sender is slowed down, and closed (1008) once held back for {FLOOD_S} s", name="recv_messages_per_s", ge=1)
    awareness_bytes: int = setting(256 * 1024, "largest awareness (presence) state of one client in bytes (bigger: close 1008)",
                                   name="awareness_bytes", ge=1024)
    awareness_ids: int = setting(8, "awareness client ids one connection may hold (more: close 1008)", name="awareness_ids", ge=1)


class HttpReads(BaseModel):
    """What one link's HTTP reads may cost everyone else (`GET /rooms/NAME/strokes`).

    Settings of `inhabit serve`; `server.reads` enforces them."""

    per_minute: int = setting(120, "HTTP reads of a room's strokes one link (token; its address when auth is off) may start per minute "
                              "(bursts up to a minute's worth); more: 429 with Retry-After", name="http_reads_per_minute", ge=1)
    concurrency: int = setting(4, "HTTP reads of a room's strokes one link may have in flight at once; more: 429 with Retry-After",
                               name="http_read_concurrency", ge=1)
    write_timeout_s: float = setting(10.0, "seconds an HTTP answer waits for its client to take the bytes already sent before the "
                                     "connection is cut (a client that stops reading holds nothing)", name="http_write_timeout_s", gt=0)


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
    allowed_origins: str = setting("", "web origins (scheme://host[:port], comma-separated) whose pages may open websockets and send "
                                   "POST/PUT/DELETE here besides this server's own (its Host, --public-url); others get 403 / close 1008",
                                   name="allowed_origins")
    versions_kept: int = setting(10, "earlier versions kept per room (one per compaction of a non-empty canvas), so a wipe can be "
                                 "rolled back (0: none)", name="versions_kept", ge=0)

    connections: ConnectionLimits = Field(default_factory=ConnectionLimits)
    history: DocBounds = Field(default_factory=DocBounds)
    reads: HttpReads = Field(default_factory=HttpReads)
    disk: DiskLimits = Field(default_factory=DiskLimits)
    cluster: ClusterSettings = Field(default_factory=ClusterSettings)

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: str) -> str:
        for origin in _split(value):
            if origin_of(origin) != origin.lower().rstrip("/"):
                raise ValueError(f"{origin!r} is not an origin: scheme://host[:port], no path")
        return value

    @property
    def origins(self) -> frozenset[str]:
        """The origins allowed besides the request's own: `--allowed-origins` and `--public-url`'s."""
        listed = {origin_of(o) for o in _split(self.allowed_origins)}
        if self.public_url:
            listed.add(origin_of(self.public_url))
        return frozenset(o for o in listed if o)

    @property
    def trusted_hosts(self) -> frozenset[str]:
        """`Host` values that name this server (any port): loopback, the listen address, `--public-url`'s
        and `--allowed-origins`' hosts. Another name reaching it is a DNS-rebinding page (or a proxy
        that needs `--public-url`)."""
        hosts = {"127.0.0.1", "localhost", "[::1]"}
        if self.host not in ("0.0.0.0", "::", ""):
            hosts.add(f"[{self.host}]" if ":" in self.host else self.host.lower())
        for origin in self.origins:
            hosts.add(host_name(urlsplit(origin).netloc))
        return frozenset(hosts)

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


def _split(value: str) -> list[str]:
    return [part for part in value.replace(",", " ").split() if part]


def origin_of(url: str) -> str:
    """`scheme://host[:port]` of a URL, lower-cased ("" if it has none)."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return ""
    if parts.scheme not in ("http", "https") or not parts.netloc or "@" in parts.netloc:
        return ""
    return f"{parts.scheme}://{parts.netloc}".lower()


def host_name(netloc: str) -> str:
    """The host of a `host[:port]` (an IPv6 address keeps its brackets), lower-cased."""
    netloc = netloc.strip().lower()
    if netloc.startswith("["):
        return netloc[: netloc.find("]") + 1] if "]" in netloc else netloc
    return netloc.rsplit(":", 1)[0] if ":" in netloc else netloc
