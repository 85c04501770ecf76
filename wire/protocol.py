"""The y-websocket wire protocol, in one place: message types, close codes, encoders, decoders.

One message per websocket frame. Encoding uses pycrdt's public helpers. Decoding is our own
because pycrdt's `Decoder` does no bounds checks: a truncated frame from a hostile client
must become a clean `ProtocolError` (close 1007), never an IndexError deep inside a room or a
silent truncation.
"""

from __future__ import annotations

from enum import IntEnum

from pycrdt import YMessageType, YSyncMessageType, create_awareness_message, create_update_message, write_message, write_var_uint

# Message types as plain ints (compared on every frame; an IntEnum compare costs more).
MSG_SYNC = int(YMessageType.SYNC)
MSG_AWARENESS = int(YMessageType.AWARENESS)
MSG_AUTH = 2  # y-protocols auth: [2, 0 = PermissionDenied, reason]
MSG_QUERY_AWARENESS = 3

SYNC_STEP1 = int(YSyncMessageType.SYNC_STEP1)
SYNC_STEP2 = int(YSyncMessageType.SYNC_STEP2)
SYNC_UPDATE = int(YSyncMessageType.SYNC_UPDATE)

EMPTY_UPDATE = b"\x00\x00"
"""A Yjs update that changes nothing (sent by some clients as their SyncStep2 to an empty server)."""


class Close(IntEnum):
    """Websocket close codes the server sends; the close frame's reason says the rest."""

    NORMAL = 1000
    TEXT_FRAME = 1003  # text frames are not part of the protocol
    MALFORMED = 1007  # a frame that does not decode (or updates whose dependencies never came, past the full-state budget)
    POLICY = 1008  # a per-connection bound was crossed (awareness size or ids, message rate)
    TOO_BIG = 1009  # a message over the size limit
    INTERNAL = 1011  # our bug: the message that hit it is dropped, the room goes on
    TOO_SLOW = 1013  # the client's send queue overflowed: reconnect
    BAD_ROOM = 4400  # room name is not 1-64 of [A-Za-z0-9_-]
    BAD_TOKEN = 4401  # missing, invalid, expired or revoked token (also an open connection's, when its link lapses)
    WRONG_ROOM = 4403  # a genuine token for another room
    ROOM_FULL = 4413  # the room's document reached its size limit: no more edits
    UNAVAILABLE = 4503  # the server cannot save edits right now (disk full, read-only): reconnect later


NO_RETRY = frozenset({Close.TEXT_FRAME, Close.MALFORMED, 1008, Close.TOO_BIG})
"""Close codes after which reconnecting would fail the same way (as would 4400-4499)."""

READ_ONLY = "read-only: this token may view the room but not edit it"

SERVER_PEER_HEADER = "x-inhabit-server-peer"
"""The websocket upgrade header by which a peer the server made itself (its hosted agent, an MCP
session) shows the one-off credential the server issued it in process (`server.vouch`). Only then
does the server vouch for its presence and chat lines as an agent's or an MCP client's."""
"""The PermissionDenied reason a viewer gets (once) when it sends an update."""


def sync_step1(state: bytes) -> bytes:
    """`[0, 0, state vector]`: what I have; answer with what I lack."""
    return bytes((MSG_SYNC, SYNC_STEP1)) + write_message(state)


def sync_step2(update: bytes) -> bytes:
    """`[0, 1, update]`: the answer to a SyncStep1."""
    return bytes((MSG_SYNC, SYNC_STEP2)) + write_message(update)


sync_update = create_update_message
awareness_message = create_awareness_message


class ProtocolError(ValueError):
    """A frame that does not follow the protocol; the reason goes into the close frame."""


def read_var_uint(buf: bytes, pos: int) -> tuple[int, int]:
    """Decode a lib0 varuint at `pos`; returns (value, next position)."""
    value = 0
    shift = 0
    n = len(buf)
    while True:
        if pos >= n:
            raise ProtocolError("truncated varuint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ProtocolError("varuint too long")


def read_var_bytes(buf: bytes, pos: int) -> tuple[bytes, int]:
    """Decode a length-prefixed byte string at `pos`."""
    length, pos = read_var_uint(buf, pos)
    end = pos + length
    if end > len(buf):
        raise ProtocolError("truncated message payload")
    return buf[pos:end], end


def decode_sync(frame: bytes) -> tuple[int, bytes]:
    """(sub-type, payload) of a sync frame `[0, sub, varbytes]`."""
    if len(frame) < 2:
        raise ProtocolError("truncated sync message")
    sub = frame[1]
    if sub > SYNC_UPDATE:
        raise ProtocolError(f"unknown sync message type {sub}")
    payload, _ = read_var_bytes(frame, 2)
    return sub, payload


def decode_awareness_payload(frame: bytes) -> bytes:
    """The awareness update inside an awareness frame `[1, varbytes]`."""
    payload, _ = read_var_bytes(frame, 1)
    return payload


def parse_awareness(update: bytes) -> list[tuple[int, int, str]]:
    """Entries (client id, clock, JSON state text; "null" = removed) of an awareness update."""
    count, pos = read_var_uint(update, 0)
    if count > 100_000:
        raise ProtocolError("too many awareness entries")
    out = []
    for _ in range(count):
        client, pos = read_var_uint(update, pos)
        clock, pos = read_var_uint(update, pos)
        raw, pos = read_var_bytes(update, pos)
        try:
            state = raw.decode()
        except UnicodeDecodeError as exc:
            raise ProtocolError("awareness state is not UTF-8") from exc
        out.append((client, clock, state))
    return out


def parse_state_vector(sv: bytes, limit: int = 1_000_000) -> list[tuple[int, int]]:
    """(client id, clock) pairs of a Yjs state vector; at most `limit` of them."""
    count, pos = read_var_uint(sv, 0)
    if count > limit:
        raise ProtocolError(f"state vector of {count} entries exceeds the limit of {limit}")
    out = []
    for _ in range(count):
        client, pos = read_var_uint(sv, pos)
        clock, pos = read_var_uint(sv, pos)
        out.append((client, clock))
    return out


def encode_awareness(entries: list[tuple[int, int, str]]) -> bytes:
    """An awareness update from (client id, clock, JSON state text) entries."""
    parts = [write_var_uint(len(entries))]
    for client, clock, state in entries:
        raw = state.encode()
        parts += [write_var_uint(client), write_var_uint(clock), write_var_uint(len(raw)), raw]
    return b"".join(parts)


def permission_denied(reason: str) -> bytes:
    """An auth message `[2, 0 (PermissionDenied), varstring reason]`."""
    raw = reason.encode()
    return bytes([MSG_AUTH, 0]) + write_var_uint(len(raw)) + raw
