"""HMAC-signed capability tokens: who may view or edit which room, until when.

Shared by the rooms server and the agent's routes: `verify`, `identity_of` and `role_of` are
the one lookup for every HTTP route and the websocket. A token carries its room ("*" for all),
role, id, optional display name and optional expiry, signed with a secret kept in the data
dir, so minting needs no database and checking is one HMAC per connection. The one piece of
state is the revocation list, a small file in the data dir (see `RevocationList`).

Formats (parsed exactly, whole-string; anything else is "malformed token"):
- v2 `v2.<room>.<role>.<id>.<expiry>.<b64 name>.<b64 mac>`: room is '*' or a room name in
  clear (room names are URL-safe and dot-free); expiry is Unix seconds or empty; name is empty
  or base64url UTF-8; the MAC covers everything before the last dot. `mint` makes these.
- v1 `v1.<b64 room>.<role>.<b64 mac>`: still accepted so links shared before v2 keep working;
  they never expire, their id is the first 12 characters of the MAC, and `inhabit revoke TOKEN`
  refuses one. Rotating the secret retires them all.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import secrets
import string
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal, Protocol

from starlette.requests import HTTPConnection

from common.http import Refusal

Role = Literal["view", "edit"]
ROLES: tuple[str, ...] = ("view", "edit")
SECRET_FILE = "secret.key"
REVOKED_FILE = "revoked.txt"
MAX_NAME = 64  # characters of a display name
MAX_TOKEN = 512  # longer than any token we mint: refuse before any regex or HMAC work

ROOM_RULE = "room name must be 1-64 characters of A-Z a-z 0-9 _ -"
_ROOM = r"[A-Za-z0-9_-]{1,64}"
_B64 = r"[A-Za-z0-9_-]"
_ROOM_NAME = re.compile(_ROOM)
_ID = re.compile(_B64 + "{12}")
_ID_ALPHABET = string.ascii_letters + string.digits  # no '-': ids are CLI arguments
_V1 = re.compile(rf"v1\.(?P<room>{_B64}{{1,88}})\.(?P<role>view|edit)\.(?P<mac>{_B64}{{24}})")
_V2 = re.compile(
    rf"v2\.(?P<room>\*|{_ROOM})\.(?P<role>view|edit)\.(?P<id>[A-Za-z0-9]{{12}})"
    rf"\.(?P<exp>[1-9][0-9]{{0,11}})?\.(?P<name>{_B64}{{1,344}})?\.(?P<mac>{_B64}{{24}})"
)


def valid_room(name: str) -> bool:
    """True if `name` is exactly a room name. The only room-name check: a whole-string match,
    so 'lobby\\n' (which `re.match` with `$` lets through) is refused."""
    return _ROOM_NAME.fullmatch(name) is not None


class TokenError(ValueError):
    """A token that cannot be used, with a message fit to show the user and the websocket
    close code that says why (4401 bad, missing, expired or revoked token, 4403 a genuine token
    for another room, 4400 not a room name)."""

    def __init__(self, reason: str, code: int = 4401) -> None:
        super().__init__(reason)
        self.code = code


MALFORMED = "malformed token"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _text_of(b64: str) -> str:
    """Strictly decode base64url UTF-8: the text must re-encode to exactly `b64`."""
    try:
        text = _unb64(b64).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise TokenError(MALFORMED) from exc
    if _b64(text.encode()) != b64:
        raise TokenError(MALFORMED)
    return text


@dataclass(frozen=True)
class TokenInfo:
    """Who a genuine token speaks for: its room ('*' = all), role, and identity. `id` is
    stable per token (it names the holder in logs, prompts and revocation); `name` is a
    display name the minter put in the token, if any; `expires` is when it stops working."""

    room: str
    role: Role
    id: str
    name: str | None = None
    expires: datetime | None = None

    @property
    def label(self) -> str:
        """How the holder is shown to others: the minted name, else the role and token id."""
        return self.name or f"{'editor' if self.role == 'edit' else 'viewer'} {self.id[:6]}"


class RevocationList:
    """Ids of genuine tokens that are refused anyway: one id per line in `<data>/revoked.txt`
    (after it, on the same line, when and what; '#' lines are comments; delete a line to undo).

    A plain file rather than a SQLite table: the one writer is `inhabit revoke` (rarely), an
    appended line is atomic, the server learns of a change from one `stat` (SQLite's WAL would
    hide writes from the main file's mtime until a checkpoint), and an operator can read and
    edit it. The server looks at most every LOOK_S and rereads only when the file changed, so
    a revocation takes effect within about a second, without a restart (open connections and
    sessions too: `common.lapses`)."""

    LOOK_S = 0.5

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._ids: frozenset[str] = frozenset()
        self._seen: tuple[int, int, int] | None = None  # (mtime_ns, size, inode) last read
        self._next_look = 0.0

    def __contains__(self, token_id: str) -> bool:
        self._refresh()
        return token_id in self._ids

    def ids(self) -> frozenset[str]:
        self._refresh()
        return self._ids

    def add(self, token_id: str, note: str = "") -> None:
        if self.path is None:
            raise ValueError("this Access has no revocation list (use Access.load(data_dir))")
        line = f"{token_id}\t{datetime.now(UTC).isoformat(timespec='seconds')}\t{note}".rstrip() + "\n"
        with open(self.path, "a", encoding="utf-8") as f:  # O_APPEND: concurrent lines never interleave
            f.write(line)
        self._ids |= {token_id}

    def _refresh(self) -> None:
        now = time.monotonic()
        if self.path is None or now < self._next_look:
            return
        self._next_look = now + self.LOOK_S
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._ids, self._seen = frozenset(), None
            return
        seen = (st.st_mtime_ns, st.st_size, st.st_ino)
        if seen != self._seen:
            self._seen = seen
            self._ids = frozenset(self._parse(self.path.read_text(encoding="utf-8", errors="replace")))

    @staticmethod
    def _parse(text: str) -> set[str]:
        lines = (line.split(maxsplit=1) for line in text.splitlines())
        return {words[0] for words in lines if words and not words[0].startswith("#")}


class Revocations(Protocol):
    """Where revoked token ids are kept: `RevocationList` (a file in the data dir) or, in cluster
    mode, `common.shared_access.SharedRevocations` (a PostgreSQL table every node reads)."""

    def __contains__(self, token_id: str) -> bool: ...

    def ids(self) -> frozenset[str]:
        """Every revoked id as last read (re-read if due); the same object while nothing changed,
        so a watcher (`common.lapses.Lapses`) sees a change with one identity check."""
        ...

    def add(self, token_id: str, note: str = "") -> None: ...


def _epoch(expires: datetime | timedelta) -> int:
    """Unix seconds of an expiry given as a moment or as a time from now (naive = local time)."""
    at = time.time() + expires.total_seconds() if isinstance(expires, timedelta) else expires.timestamp()
    if at < 1:
        raise ValueError("expiry must be after 1970")
    return int(at)


def _display_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME or not name.isprintable():
        raise ValueError(f"name must be 1-{MAX_NAME} printable characters")
    return name


class Access:
    """Mints v2 tokens; checks v2 and v1 tokens (see the module docstring for the formats)."""

    def __init__(self, secret: bytes, revoked: Path | Revocations | None = None) -> None:
        if len(secret) < 16:
            raise ValueError("access secret must be at least 16 bytes")
        self._secret = secret
        self.revoked: Revocations = revoked if revoked is not None and not isinstance(revoked, Path) else RevocationList(revoked)

    @classmethod
    def load(cls, data_dir: str | Path, secret: str | None = None) -> Access:
        """Read the secret from the data dir, creating it (mode 0600) on first run; a `secret`
        given (`INHABIT_SECRET`) is used instead of the file."""
        if secret is not None:
            return cls(secret.encode(), Path(data_dir) / REVOKED_FILE)
        path = Path(data_dir) / SECRET_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32))
        secret = path.read_text().strip()
        if len(secret) < 32:
            raise ValueError(f"secret in {path} is too short; delete it to make a new one")
        return cls(secret.encode(), Path(data_dir) / REVOKED_FILE)

    def _sign(self, msg: str) -> str:
        return _b64(hmac.new(self._secret, msg.encode(), hashlib.sha256).digest()[:18])

    def mint(self, room: str, role: Role = "edit", *, name: str | None = None,
             expires: datetime | timedelta | None = None) -> str:
        """A new v2 token (with a fresh random id) for `room` ('*' = every room)."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, not {role!r}")
        if room != "*" and not valid_room(room):
            raise ValueError(f"room must be '*' or a room name: {ROOM_RULE}")
        exp = "" if expires is None else str(_epoch(expires))
        label = "" if name is None else _b64(_display_name(name).encode())
        token_id = "".join(secrets.choice(_ID_ALPHABET) for _ in range(12))  # 71 random bits
        body = f"v2.{room}.{role}.{token_id}.{exp}.{label}"
        return f"{body}.{self._sign(body)}"

    def parse(self, token: str) -> TokenInfo:
        """Who a genuine token of this server speaks for, whatever its room, expiry or the
        revocation list say; TokenError otherwise (anything not exactly a token: malformed)."""
        if len(token) <= MAX_TOKEN:
            if m := _V2.fullmatch(token):
                return self._parse_v2(token, m)
            if m := _V1.fullmatch(token):
                return self._parse_v1(m)
        raise TokenError(MALFORMED)

    def _parse_v2(self, token: str, m: re.Match[str]) -> TokenInfo:
        if not hmac.compare_digest(m["mac"], self._sign(token[: m.start("mac") - 1])):
            raise TokenError("token signature does not match this server")
        name = _text_of(m["name"]) if m["name"] else None
        expires = datetime.fromtimestamp(int(m["exp"]), UTC) if m["exp"] else None
        return TokenInfo(room=m["room"], role=m["role"], id=m["id"], name=name, expires=expires)  # type: ignore[arg-type]

    def _parse_v1(self, m: re.Match[str]) -> TokenInfo:
        room, role, mac = _text_of(m["room"]), m["role"], m["mac"]
        if room != "*" and not valid_room(room):
            raise TokenError(MALFORMED)
        if not hmac.compare_digest(mac, self._sign(f"v1\x00{room}\x00{role}")):
            raise TokenError("token signature does not match this server")
        return TokenInfo(room=room, role=role, id=mac[:12])  # type: ignore[arg-type]

    def verify(self, token: str | None, room: str) -> TokenInfo:
        """What the token grants in `room`; TokenError (with its close code) otherwise."""
        if not valid_room(room):
            raise TokenError(ROOM_RULE, 4400)
        if not token:
            raise TokenError("missing token: add ?token=... (see `inhabit token`)")
        info = self.parse(token)
        if info.id in self.revoked:
            raise TokenError("token revoked")
        if info.expires is not None and info.expires.timestamp() <= time.time():
            raise TokenError(f"token expired at {info.expires.isoformat()}")
        if info.room not in ("*", room):
            raise TokenError(f"token is for another room, not '{room}'", 4403)
        return info

    def revoke(self, token_or_id: str) -> str:
        """Refuse a token from now on (every server on this data dir, within a second or so),
        given the token itself or its id; returns the id."""
        if "." in token_or_id:
            info = self.parse(token_or_id)
            self.revoked.add(info.id, f"{info.role} {info.room} {info.label}")
            return info.id
        if not _ID.fullmatch(token_or_id):
            raise ValueError("not a token or a token id (12 characters of A-Z a-z 0-9 _ -)")
        self.revoked.add(token_or_id)
        return token_or_id

    def role(self, token: str | None, room: str) -> Role:
        """The role the token grants in `room`; TokenError (with its close code) otherwise."""
        return self.verify(token, room).role

    def check(self, token: str | None, room: str) -> Role | None:
        """The role the token grants in `room`, or None (bad token or another room)."""
        try:
            return self.role(token, room)
        except TokenError:
            return None


def token_of(conn: HTTPConnection) -> str | None:
    """The token a request or websocket carries: `?token=` or `Authorization: Bearer`."""
    token = conn.query_params.get("token")
    if token:
        return token
    auth = conn.headers.get("authorization", "")
    return auth[7:].strip() if auth.lower().startswith("bearer ") else None


OPEN = TokenInfo(room="*", role="edit", id="open")
"""Who everyone is when the server runs with auth off."""


class Denied(Refusal):
    """An HTTP request the caller may not make: the status to answer and a message saying why
    (a route that lets it through is answered with the error body, `common.http`)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(status, message)


def authorize(conn: HTTPConnection, room: str, need: Role = "view") -> TokenInfo:
    """The caller's token in `room` if it grants at least `need`; Denied (400 bad room name,
    401 missing/invalid/expired/revoked/wrong-room token, 403 view token where edit is needed)."""
    if not valid_room(room):
        raise Denied(400, ROOM_RULE)
    state = conn.app.state
    if state.settings.open:
        return OPEN
    try:
        who = state.access.verify(token_of(conn), room)
    except TokenError as exc:
        raise Denied(401, str(exc)) from None
    if need == "edit" and who.role != "edit":
        raise Denied(403, "this needs an edit token for the room; yours is view-only")
    return who


def room_of(request: HTTPConnection, need: Role = "view") -> tuple[str, TokenInfo]:
    """The room the path names and the caller's token in it, if it grants at least `need`;
    raises `Denied` otherwise (see `authorize`), which the app answers with the error body."""
    room = request.path_params["name"]
    return room, authorize(request, room, need)


def identity_of(conn: HTTPConnection, room: str) -> TokenInfo | None:
    """The caller's token in `room` (OPEN when auth is off), or None."""
    if not valid_room(room):
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
    who = identity_of(conn, room)
    return who.role if who else None
