"""A room's presence: the awareness states of its connections, who owns which client id, and
the ids held on a cluster's other nodes.

Its own module because the rules are their own concept (a connection speaks only for the ids it
owns; a departed owner's ids stay reserved to its identity for a while; a kind the server does not
vouch for is rewritten), and `Room` (`server.room`) mixes it in so the room's state stays one
object: `room.states`, `room.owners`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from wire import protocol as p

from .attribution import presence_as

if TYPE_CHECKING:
    from .conn import Conn
    from .writer import RoomWriter

ID_GRACE = 30.0
"""Seconds a departed connection's awareness ids stay reserved to its token identity."""


def _too_big(text: str, limit: int) -> bool:
    """Whether `text` is over `limit` bytes in UTF-8, without encoding it in the common cases."""
    n = len(text)
    if n > limit:
        return True
    if n <= limit // 4 or text.isascii():  # UTF-8 takes at most 4 bytes a character
        return False
    return len(text.encode()) > limit


class Presence:
    """Awareness for `Room`: the states, their owners, reservations and remote holders."""

    name: str
    conns: set[Conn]
    writer: RoomWriter
    states: dict[int, tuple[int, str]]
    """Client id -> (clock, JSON)."""
    owners: dict[int, Conn]
    """Client id -> the connection that first announced it."""
    reserved: dict[int, tuple[str, float]]
    """Id of a departed owner -> (its identity, until)."""
    remote: dict[int, tuple[str, str]]
    """Cluster: id held on another node -> (identity, node)."""
    _states_msg: bytes | None
    """Every awareness state as one message, built once per change."""

    def broadcast(self, msg: bytes, exclude: Conn | None) -> None:
        raise NotImplementedError

    def leave(self, conn: Conn) -> None:
        """Forget a connection and tell the others its awareness states are gone.

        Its ids stay reserved for ID_GRACE to the same token identity, so nobody else can take
        over someone's presence in the gap while they reconnect."""
        self.conns.discard(conn)
        gone = []
        owners, reserved = self.owners, self.reserved
        until = time.monotonic() + ID_GRACE
        for cid in conn.awareness_ids:
            if owners.get(cid) is not conn:
                continue
            del owners[cid]
            reserved.pop(cid, None)  # re-insert at the end: the dict stays ordered by expiry
            reserved[cid] = (conn.identity, until)
            entry = self.states.pop(cid, None)
            if entry is not None:
                gone.append((cid, entry[0] + 1, "null"))
        conn.awareness_ids.clear()
        self._expire_reservations()
        if gone:
            self._states_msg = None
            msg = p.awareness_message(p.encode_awareness(gone))
            self.broadcast(msg, None)
            self.writer.presence(self.name, msg, conn.identity)

    def _expire_reservations(self) -> None:
        reserved, now = self.reserved, time.monotonic()
        while reserved:
            cid = next(iter(reserved))
            if reserved[cid][1] > now:
                return
            del reserved[cid]

    def _awareness(self, conn: Conn, frame: bytes) -> None:
        """Apply an awareness update; a connection may only speak for the client ids it owns.

        A client id belongs to the first live connection that announced it; when that
        connection leaves, the id stays reserved to its token identity for ID_GRACE. Entries
        for ids held by someone else are dropped, so nobody can spoof or remove someone
        else's presence; the rest is applied and echoed. A state claiming a kind the server does
        not vouch for this connection is rewritten (`attribution.presence_as`). Past its bounds
        (ids held, bytes per state) the connection is closed with 1008.
        """
        entries = p.parse_awareness(p.decode_awareness_payload(frame))
        owners, states = self.owners, self.states
        changed = False
        forged = False
        kept = []
        for cid, clock, state in entries:
            if _too_big(state, conn.max_state):
                return conn.policy(f"awareness state of {len(state.encode())} bytes exceeds the limit of {conn.max_state} bytes")
            if state != "null" and (vouched := presence_as(conn.actor, state)) is not state:
                state, forged = vouched, True  # claimed a kind the server does not vouch for: re-encode
            entry = (cid, clock, state)
            owner = owners.get(cid)
            if owner is not conn:
                if not self._may_claim(conn, cid, owner):
                    forged = True  # someone else's presence: not ours to change
                    continue
                if state == "null" and (owner is None or cid not in states):
                    continue  # removing what nobody holds: nothing to do, nothing to claim
                if len(conn.awareness_ids) >= conn.max_ids:
                    return conn.policy(f"more than {conn.max_ids} awareness client ids on one connection")
                if owner is not None:  # its owner is on its way out: hand the id over
                    owner.awareness_ids.discard(cid)
                self.reserved.pop(cid, None)
                self.remote.pop(cid, None)
                owners[cid] = conn
                conn.awareness_ids.add(cid)
            kept.append(entry)
            cur = states.get(cid)
            if state == "null":
                if cur is not None and clock >= cur[0]:
                    del states[cid]
                    changed = True
            elif cur is None or clock > cur[0]:
                states[cid] = (clock, state)
                changed = True
        if changed:  # like y-websocket: echo to everyone, the sender's renewal keeps it alive
            self._states_msg = None
            msg = p.awareness_message(p.encode_awareness(kept)) if forged else frame
            self.broadcast(msg, None)
            self.writer.presence(self.name, msg, conn.identity)

    def _may_claim(self, conn: Conn, cid: int, owner: Conn | None) -> bool:
        """A free id may be claimed; a departing or departed owner's only by the same identity
        (in a cluster, also one held on another node: its holder moved here)."""
        if owner is not None:
            return owner.closed and owner.identity == conn.identity
        remote = self.remote.get(cid)
        if remote is not None and remote[0] != conn.identity:
            return False
        held = self.reserved.get(cid)
        return held is None or held[0] == conn.identity or held[1] <= time.monotonic()

    def _awareness_all(self) -> bytes:
        if self._states_msg is None:
            entries = [(cid, clock, state) for cid, (clock, state) in self.states.items()]
            self._states_msg = p.awareness_message(p.encode_awareness(entries))
        return self._states_msg

    def remote_awareness(self, frame: bytes, identity: str, node: str) -> None:
        """Presence from a connection on another node; ids our own connections hold stay theirs."""
        changed = skipped = False
        kept = []
        states, remote = self.states, self.remote
        for entry in p.parse_awareness(p.decode_awareness_payload(frame)):
            cid, clock, state = entry
            if cid in self.owners:
                skipped = True
                continue
            kept.append(entry)
            cur = states.get(cid)
            if state == "null":
                if cur is not None and clock >= cur[0]:
                    del states[cid]
                    remote.pop(cid, None)
                    changed = True
            elif cur is None or clock > cur[0]:
                states[cid] = (clock, state)
                remote[cid] = (identity, node)
                changed = True
        if changed:
            self._states_msg = None
            self.broadcast(p.awareness_message(p.encode_awareness(kept)) if skipped else frame, None)

    def forget_nodes(self, alive: set[str]) -> None:
        """Drop the presence held on nodes that stopped beating (died without saying goodbye)."""
        gone = [cid for cid, (_, node) in self.remote.items() if node not in alive]
        removed = []
        for cid in gone:
            del self.remote[cid]
            entry = self.states.pop(cid, None)
            if entry is not None:
                removed.append((cid, entry[0] + 1, "null"))
        if removed:
            self._states_msg = None
            self.broadcast(p.awareness_message(p.encode_awareness(removed)), None)
