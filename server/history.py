"""A room's stored history: its running sizes, and rebuilding its document (its bounds:
`server.settings.DocBounds`).

Sizes are tracked incrementally (a byte count per update), never by encoding the document per
update; the estimate only over-counts (overwritten content is still counted) and every
compaction, which encodes the document anyway, measures it exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

from pycrdt import Doc, get_update, write_var_uint
from pycrdt import Snapshot as CrdtSnapshot

from wire.protocol import read_var_uint

from .store import Row


@dataclass(slots=True)
class History:
    """Running sizes of one room's stored history."""

    updates: int = 0  # update rows since the snapshot
    bytes: int = 0  # their bytes
    snapshot_bytes: int = 0
    doc_bytes: int = 0  # the encoded document, estimated from above


def has_pending(update: bytes, doc: Doc) -> bool:
    """After `doc.apply_update(update)`: did part of it stay pending (waiting for updates
    the document never got)? What the update holds beyond the document's state vector is
    exactly what could not be integrated. (`get_state(update)` cannot tell: Yjs only reports
    clients whose structs start at clock 0.) Deletions of unknown items are not detected."""
    rest = get_update(update, doc.get_state())
    clients, _ = read_var_uint(rest, 0)
    return clients > 0


def without_pending(doc: Doc) -> Doc:
    """A copy of `doc` without its pending structs.

    pycrdt encodes pending structs along with the document, so re-encoding keeps them; a
    snapshot (state vector + delete set) does not. Snapshots need a document that skips GC,
    hence the detour. Costs a few encodings of the document: only on the refusal path.
    """
    no_gc: Doc = Doc(skip_gc=True)
    no_gc.apply_update(doc.get_update())
    snap = CrdtSnapshot.decode(_drop_empty_clients(CrdtSnapshot.from_doc(no_gc).encode()))
    clean = Doc.from_snapshot(snap, no_gc)
    out: Doc = Doc()  # back to a collecting document
    out.apply_update(clean.get_update())
    return out


def _drop_empty_clients(snapshot: bytes) -> bytes:
    """A snapshot (delete set, then state vector) without clock-0 entries: yrs lists a client
    known only from pending structs with clock 0, and `from_snapshot` panics on it."""
    pos = 0
    clients, pos = read_var_uint(snapshot, pos)
    for _ in range(clients):  # skip the delete set: client, ranges, (clock, length)*
        _, pos = read_var_uint(snapshot, pos)
        ranges, pos = read_var_uint(snapshot, pos)
        for _ in range(2 * ranges):
            _, pos = read_var_uint(snapshot, pos)
    entries, sv_pos = [], pos
    count, pos = read_var_uint(snapshot, pos)
    for _ in range(count):
        client, pos = read_var_uint(snapshot, pos)
        clock, pos = read_var_uint(snapshot, pos)
        if clock:
            entries.append(write_var_uint(client) + write_var_uint(clock))
    return snapshot[:sv_pos] + write_var_uint(len(entries)) + b"".join(entries)


def build(rows: list[Row]) -> tuple[Doc, History, list[tuple[Row, str]]]:
    """The document from stored rows in order; rows that do not apply cleanly are returned
    as (row, error) for quarantine instead of taking the room down."""
    doc: Doc = Doc()
    history = History()
    bad: list[tuple[Row, str]] = []
    pending = False
    for row in rows:
        try:
            doc.apply_update(row.data)
        except BaseException as exc:  # ValueError, or a Rust panic (a BaseException) on worse damage
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            bad.append((row, f"does not apply: {exc}"))
            continue
        if has_pending(row.data, doc):
            pending = True
            bad.append((row, "depends on history that is missing"))
            continue
        size = len(row.data)
        history.doc_bytes += size
        if row.kind == "update":
            history.updates += 1
            history.bytes += size
        else:
            history.snapshot_bytes = size
    if pending:
        doc = without_pending(doc)
    return doc, history, bad
