"""Which websocket connections the server made itself, so it can say who is an agent.

Why: presence and chat lines are written by peers, and a peer can write anything; only the
server knows which connections are its own (the hosted agent, an MCP session's peer). A plugin
asks `ServerPeers.vouch(room, kind, name)` for a credential before its peer connects; the peer
shows it in the upgrade's `wire.protocol.SERVER_PEER_HEADER`, and the websocket gives that
connection the `Actor` vouched for (kind "agent" or "mcp", the name). The credential is 256
random bits, kept in this process only, handed in process to the peer that connects over
loopback and never sent to a client; it names one room and is withdrawn when the peer leaves.
Tokens cannot carry it: anyone holding an edit link could then mint themselves an agent.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Literal

ServerKind = Literal["agent", "mcp"]


@dataclass(frozen=True)
class Vouched:
    """A peer the server made: its room, kind and display name."""

    room: str
    kind: ServerKind
    name: str


class ServerPeers:
    """The credentials issued to the server's own peers (bounded by those peers: one each)."""

    def __init__(self) -> None:
        self._issued: dict[str, Vouched] = {}

    def __len__(self) -> int:
        return len(self._issued)

    def vouch(self, room: str, kind: ServerKind, name: str) -> str:
        """A fresh credential for one peer of ours in `room`; `withdraw` it when the peer leaves."""
        credential = secrets.token_urlsafe(32)
        self._issued[credential] = Vouched(room, kind, name)
        return credential

    def claim(self, credential: str | None, room: str) -> Vouched | None:
        """Who a connection to `room` showing `credential` is, if we issued it for that room."""
        if not credential:
            return None
        vouched = self._issued.get(credential)
        return vouched if vouched is not None and vouched.room == room else None

    def withdraw(self, credential: str | None) -> None:
        if credential:
            self._issued.pop(credential, None)
