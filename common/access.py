"""HMAC-signed capability tokens: who may view or edit which room.

Shared by the rooms server and the agent's routes: one lookup for every HTTP route and the
websocket. Stateless on purpose: a token carries its room ("*" for all) and role, signed with a secret
kept in the data dir, so minting needs no database and checking is one HMAC per connection.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from starlette.requests import HTTPConnection

Role = Literal["view", "edit"]
ROLES: tuple[str, ...] = ("view", "edit")
SECRET_FILE = "secret.key"


class TokenError(ValueError):
    """A token that cannot be used, with a message fit to show the user and the websocket
    close code that says why (4401 bad or missing token, 4403 a genuine token for another room)."""

    def __init__(self, reason: str, code: int = 4401) -> None:
        super().__init__(reason)
        self.code = code


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class TokenInfo:
    """Who a genuine token speaks for: its room ('*' = all), role, and identity. `id` is
    stable per token (it names the holder in logs, prompts and revocation); `name` is a
    display name the minter put in the token, if any."""

    room: str
    role: Role
    id: str
    name: str | None = None

    @property
    def label(self) -> str:
        """How the holder is shown to others: the minted name, else the role and token id."""
        return self.name or f"{self.role}er {self.id[:6]}"


class Access:
    """Mints and checks tokens of the form `v1.<b64 room>.<role>.<b64 mac>`."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("access secret must be at least 16 bytes")
        self._secret = secret

    @classmethod
    def load(cls, data_dir: str | Path) -> Access:
        """Read the secret from the data dir, creating it (mode 0600) on first run."""
        path = Path(data_dir) / SECRET_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32))
        secret = path.read_text().strip()
        if len(secret) < 32:
            raise ValueError(f"secret in {path} is too short; delete it to make a new one")
        return cls(secret.encode())

    def _mac(self, room: str, role: str) -> str:
        msg = f"v1\x00{room}\x00{role}".encode()
        return _b64(hmac.new(self._secret, msg, hashlib.sha256).digest()[:18])

    def mint(self, room: str, role: Role = "edit") -> str:
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, not {role!r}")
        if not room:
            raise ValueError("room must be a name or '*'")
        return f"v1.{_b64(room.encode())}.{role}.{self._mac(room, role)}"

    def parse(self, token: str) -> tuple[str, Role]:
        """(room, role) of a genuine token; TokenError saying why otherwise."""
        parts = token.split(".") if token else []
        if len(parts) != 4 or parts[0] != "v1":
            raise TokenError("malformed token")
        _, room_b64, role, mac = parts
        try:
            room = _unb64(room_b64).decode()
        except Exception as exc:
            raise TokenError("malformed token") from exc
        if role not in ROLES:
            raise TokenError("malformed token")
        if not hmac.compare_digest(mac, self._mac(room, role)):
            raise TokenError("token signature does not match this server")
        return room, role  # type: ignore[return-value]

    def verify(self, token: str | None, room: str) -> TokenInfo:
        """What the token grants in `room`; TokenError (with its close code) otherwise."""
        if not token:
            raise TokenError("missing token: add ?token=... (see `inhabit token`)")
        token_room, role = self.parse(token)
        if token_room not in ("*", room):
            raise TokenError(f"token is for another room, not '{room}'", 4403)
        return TokenInfo(room=token_room, role=role, id=token.rsplit(".", 1)[-1][:12])

    def role(self, token: str | None, room: str) -> Role:
        """The role the token grants in `room`; TokenError (with its close code) otherwise."""
        return self.verify(token, room).role

    def check(self, token: str | None, room: str) -> Role | None:
        """The role the token grants in `room`, or None (bad token or another room)."""
        try:
            return self.role(token, room)
        except TokenError:
            return None


ROOM_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def token_of(conn: HTTPConnection) -> str | None:
    """The token a request or websocket carries: `?token=` or `Authorization: Bearer`."""
    token = conn.query_params.get("token")
    if token:
        return token
    auth = conn.headers.get("authorization", "")
    return auth[7:].strip() if auth.lower().startswith("bearer ") else None


OPEN = TokenInfo(room="*", role="edit", id="open")
"""Who everyone is when the server runs with auth off."""


def identity_of(conn: HTTPConnection, room: str) -> TokenInfo | None:
    """The caller's token in `room` (OPEN when auth is off), or None."""
    if not ROOM_NAME.match(room):
        return None
    state = conn.app.state
    if state.settings.open:
        return OPEN
    try:
        return state.access.verify(token_of(conn), room)
    except TokenError:
        return None


def role_of(conn: HTTPConnection, room: str) -> Role | None:
    """The caller's role in `room` ('edit' when the server runs with auth off), or None."""
    if not ROOM_NAME.match(room):
        return None
    state = conn.app.state
    if state.settings.open:
        return "edit"
    return state.access.check(token_of(conn), room)
