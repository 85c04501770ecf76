"""The y-websocket wire protocol: one message per websocket frame.

Encoding uses pycrdt's helpers (they are right). Decoding is our own because pycrdt's
`Decoder` does no bounds checks: a truncated frame from a hostile client must become a clean
`ProtocolError` (close 1007), never an IndexError deep inside a room or a silent truncation.
"""

from __future__ import annotations

from pycrdt._sync import (
    create_awareness_message,
    create_sync_step1_message,
    create_sync_step2_message,
    create_update_message,
    write_var_uint,
)

MSG_SYNC = 0
MSG_AWARENESS = 1
MSG_AUTH = 2
MSG_QUERY_AWARENESS = 3

SYNC_STEP1 = 0
SYNC_STEP2 = 1
SYNC_UPDATE = 2

EMPTY_UPDATE = b"\x00\x00"

__all__ = [
    "ProtocolError", "read_var_uint", "read_var_bytes", "decode_sync", "decode_awareness_payload",
    "parse_awareness", "encode_awareness", "permission_denied", "sync_step1", "sync_step2",
    "sync_update", "awareness_message", "write_var_uint",
]

sync_step1 = create_sync_step1_message
sync_step2 = create_sync_step2_message
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
