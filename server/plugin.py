"""The seam between the rooms server and what is built on it (the agent is one such plugin).

Modelled on Hocuspocus's extensions: a typed interface with named hooks, so the server never
probes a plugin with `hasattr` and a plugin never reaches into rooms. A plugin gets the
`Host` at start-up and answers HTTP through its own routes; it joins rooms as an ordinary
websocket peer if it wants to act in them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from starlette.routing import BaseRoute

from common.access import Access
from common.actor import Actor
from common.cluster import Cluster
from common.disk import DiskBudget
from common.lapses import Lapses

from .settings import ServerSettings
from .vouch import ServerPeers

Occupancy = Callable[[str, int], None]
"""Told `(room, open connections)` whenever a connection joins or leaves a room."""


PresenceOf = Callable[[str, int], "Actor | None"]
"""`(room, awareness client id)` -> who holds that presence id on this node, as the server knows
them (token id and role from the connection; the name is the display name the peer announced
elsewhere), or None when the server cannot say (not here, gone, or held on another node)."""
WriterOf = Callable[[str, str], Actor | None]
"""`(room, message id) -> Actor | None`: who wrote a recent chat line of a room loaded here."""


def _ignore(watcher: Occupancy) -> None:
    return None


def _nobody(room: str, client_id: int) -> Actor | None:
    return None


def _unknown(room: str, message_id: str) -> Actor | None:
    return None


@dataclass(frozen=True)
class Host:
    """What the server hands a plugin: the settings, the token authority, word of who is
    where (`watch_rooms(fn)`: fn(room, connections) on every join and leave) and who wrote a
    chat line (`writer_of`), credentials for its own peers (`peers`), nothing of rooms
    themselves. Why the last: a plugin that must be in a room while people are (the agent, for
    behaviours that react to them) learns when to join without polling or holding rooms open."""

    settings: ServerSettings
    access: Access
    watch_rooms: Callable[[Occupancy], None] = field(default=_ignore)
    cluster: Cluster | None = None
    """Cluster mode: this node's id and its Redis and PostgreSQL clients (None: one process)."""
    lapses: Lapses | None = None
    """The process's watcher of open links (`common.lapses`): `watch(token id, expires, fn)` tells
    `fn` within a second or so when that link is revoked or expires, so whatever a plugin holds
    open with a link (an MCP session, a behaviour) is cut then (None: nothing is watched)."""
    presence_of: PresenceOf = field(default=_nobody)
    """Whose connection holds a presence client id: what a join or leave a plugin sees over the
    websocket is worth (the agent: a behaviour fired by a viewer's join acts as a viewer)."""
    peers: ServerPeers = field(default_factory=ServerPeers)
    """Credentials for the plugin's own peers (`vouch(room, "agent" | "mcp", name)`, shown in the
    upgrade's `wire.protocol.SERVER_PEER_HEADER`): only their presence and chat lines are shown
    as an agent's or an MCP client's. `withdraw` one when its peer leaves."""
    writer_of: WriterOf = field(default=_unknown)
    """Who wrote a recent chat line (the last `server.attribution.WRITERS_KEPT` of a room loaded
    on this node, whichever node the writer was connected to): the link's `Actor`, from its
    token, or one of the server's own peers; None when not known."""
    disk: DiskBudget | None = None
    """What data may cost on disk (`common.disk`): a plugin `add`s its stores' history (bounded per
    room, trimmed for the data budget, forgotten with expired rooms) and refuses new history
    while `disk.refusal` says why (None: no budget here)."""


class Plugin(Protocol):
    """Routes plus lifecycle hooks, called in order at start-up and in reverse at shutdown."""

    @property
    def routes(self) -> Sequence[BaseRoute]: ...

    async def startup(self, host: Host) -> None: ...

    async def shutdown(self) -> None: ...

    def gauges(self) -> dict[str, tuple[float, str]]:
        """Figures for /metrics, read at scrape time: name -> (value, help)."""
        ...
