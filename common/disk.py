"""Disk that stays bounded: what every store's history costs per room, the data folder's budget,
and the sweep that trims history (and, optionally, forgets rooms nobody opens any more).

Why one module for it: the room store (versions), the run records and the behaviours' firing
records each kept their own count cap, and nothing added them up: one edit link filled 1 GB in
three minutes, rooms never expired. Each store now answers the same small `History` protocol
(`usage`, `trim`, `forget`), and `DiskBudget` alone decides, for all of them:

- per room, each store's history is held under its own byte bound (`DiskLimits`);
- past `--data-bytes` (embedded mode: the data folder), the history of the rooms with the most
  bytes unopened for longest goes first (history bytes x time since the room was last opened;
  rooms loaded now go last), until the folder is back under 90% of its budget;
- if trimming every room's history cannot get it under, new history (versions, run records) is
  refused (`refusal`) until it is; live edits are never refused for it: the room's current
  state is not history;
- `--room-ttl` (days, off by default): a room nobody has opened for that long is forgotten,
  document, versions and records.

What is "history" is the store's to say: old versions (never the document itself), finished run
records (never queued or running ones), firing records (never the behaviours themselves).

Measuring SQLite honestly: a DELETE does not shrink a file, its pages go on a free list that
later writes reuse. A file's size counts as its live pages, `(page_count - freelist_count) *
page_size`, plus its WAL; new files are created with `auto_vacuum = INCREMENTAL` and each trim
hands free pages back (`PRAGMA incremental_vacuum`), so the files follow at the next checkpoint;
files made before keep their free pages for reuse until `inhabit gc --vacuum` rewrites them.
Synchronous: the server calls `sweep` off the event loop (`asyncio.to_thread`).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, ConfigDict

from common.settings import setting

log = logging.getLogger("inhabit.disk")

GiB = 1024 ** 3
MiB = 1024 ** 2
DAY_MS = 86_400_000
LOW_WATER = 0.9
"""Past the budget, trim until the folder is under this share of it, so sweeps do not trim a
little at every pass."""
SQLITE_SUFFIXES = (".db", ".sqlite3")


class DiskLimits(BaseModel):
    """What the data on disk may cost: per room, per store, and the data folder in all.

    Settings of `inhabit serve`; `DiskBudget` enforces them."""

    model_config = ConfigDict(frozen=True)

    data_bytes: int = setting(10 * GiB, "budget of the data folder in bytes (embedded mode): past it the history (old versions, finished "
                              "run records, firing records) of the largest, least recently opened rooms is trimmed, and if that is not "
                              "enough new history is refused (edits go on); 0: no budget", name="data_bytes", ge=0)
    room_versions_bytes: int = setting(256 * MiB, "bytes of earlier versions kept per room (on top of --versions-kept), oldest dropped first",
                                       name="room_versions_bytes", ge=0)
    room_runs_bytes: int = setting(64 * MiB, "bytes of finished run records kept per room, oldest dropped first", name="room_runs_bytes", ge=0)
    room_firings_bytes: int = setting(32 * MiB, "bytes of behaviour firing records kept per room, oldest dropped first",
                                      name="room_firings_bytes", ge=0)
    room_ttl: float = setting(0.0, "days after which a room nobody has opened is deleted (its document, versions and records); 0: never",
                              name="room_ttl", ge=0)
    disk_sweep_s: float = setting(300.0, "seconds between sweeps of the stores (per-room bounds, the data budget, --room-ttl)",
                                  name="disk_sweep_s", gt=0)


class History(Protocol):
    """One store's history, per room (implemented by each store over its own connection)."""

    name: str
    """What it holds, for reports: "versions", "runs", "firings"."""

    def usage(self) -> dict[str, int]:
        """Bytes of trimmable history per room."""
        ...

    def trim(self, room: str, keep_bytes: int) -> int:
        """Drop the room's oldest history until at most `keep_bytes` are left; the bytes dropped."""
        ...

    def forget(self, room: str) -> int:
        """Drop everything this store holds of the room; the bytes dropped (as far as known)."""
        ...

    def reclaim(self) -> None:
        """Hand what deletes freed back to the file system (SQLite: free pages, the WAL)."""
        ...


class Openings(Protocol):
    """When each room was last opened (the room store keeps it, in either mode)."""

    def opened(self, rooms: Iterable[str], at_ms: int) -> None: ...
    def last_opened(self) -> dict[str, int]: ...


@dataclass
class Freed:
    """What one sweep (or `inhabit gc`) did."""

    trimmed: dict[str, int] = field(default_factory=dict)  # store -> bytes of history dropped
    rooms_trimmed: list[str] = field(default_factory=list)  # rooms trimmed for the budget, in order
    forgotten: list[str] = field(default_factory=list)  # rooms expired by --room-ttl
    before: int | None = None  # the data folder's bytes before and after (embedded mode)
    after: int | None = None
    refusal: str | None = None

    def add(self, store: str, n: int) -> None:
        if n:
            self.trimmed[store] = self.trimmed.get(store, 0) + n

    def lines(self) -> list[str]:
        out = [f"{store}: {n} bytes of history dropped" for store, n in sorted(self.trimmed.items())]
        if self.forgotten:
            out.append(f"rooms expired (--room-ttl): {', '.join(self.forgotten)}")
        if self.rooms_trimmed and self.before is not None and self.after is not None:
            out.append(f"trimmed for the data budget: {', '.join(self.rooms_trimmed)} (data folder {self.before} -> {self.after} bytes)")
        if self.refusal:
            out.append(self.refusal)
        return out


def sqlite_live_bytes(path: Path) -> int:
    """A SQLite file's live pages plus its WAL: what it holds, not how big it once grew."""
    wal = Path(str(path) + "-wal")
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0)
        try:
            pages = db.execute("PRAGMA page_count").fetchone()[0]
            free = db.execute("PRAGMA freelist_count").fetchone()[0]
            size = db.execute("PRAGMA page_size").fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error:  # not a database (or damaged): its size on disk
        return _size(path) + _size(wal)
    return (pages - free) * size + _size(wal)


def folder_bytes(folder: Path) -> int:
    """The data folder's bytes: SQLite files by their live pages (`sqlite_live_bytes`), the rest by size."""
    total = 0
    for path in folder.rglob("*"):
        if not path.is_file() or path.name.endswith(("-wal", "-shm")):
            continue
        total += sqlite_live_bytes(path) if path.suffix in SQLITE_SUFFIXES else _size(path)
    return total


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def now_ms() -> int:
    return int(time.time() * 1000)


class DiskBudget:
    """The per-room bounds, the data folder's budget and room expiry, over every store's `History`.

    `folder` is None in cluster mode (PostgreSQL is not ours to measure): then the per-room
    bounds and `--room-ttl` apply, not `--data-bytes`. `live()` names the rooms loaded now
    (never expired, trimmed last)."""

    def __init__(self, limits: DiskLimits, openings: Openings, folder: Path | None = None,
                 live: Callable[[], set[str]] = set) -> None:
        self.limits = limits
        self.openings = openings
        self.folder = folder
        self.live = live
        self.histories: list[tuple[History, int]] = []
        self.refusal: str | None = None
        """Why new history is refused now (the data folder is over its budget even with every
        room's history trimmed), or None."""
        self.used: int | None = None
        """The data folder's bytes at the last sweep (embedded mode)."""
        self.sweeps = 0
        self._lock = threading.Lock()  # one sweep at a time (the periodic one, a test's, `inhabit gc`'s)
        self._touched: dict[str, int] = {}  # rooms joined or left since the last sweep -> when

    def add(self, history: History, per_room: int) -> None:
        """Bound `history` to `per_room` bytes a room (0: unbounded), and trim it for the budget."""
        self.histories.append((history, per_room))

    def touch(self, room: str, connections: int = 0) -> None:
        """Somebody joined or left `room` now (`Rooms.watch`'s signature; on the loop: no I/O, the
        next sweep records it)."""
        self._touched[room] = now_ms()

    def remember(self) -> None:
        """Record the openings not swept yet (at shutdown, so a restart does not lose them)."""
        touched, self._touched = self._touched, {}
        for room, at in touched.items():
            self.openings.opened([room], at)

    async def run(self) -> None:
        """Sweep every `disk_sweep_s`, off the loop, for as long as the server runs."""
        while True:
            await asyncio.sleep(self.limits.disk_sweep_s)
            touched, self._touched = self._touched, {}  # read on the loop, where rooms change
            try:
                freed = await asyncio.to_thread(self.sweep, self.live(), touched)
            except Exception:  # a store away (PostgreSQL restarting): the next sweep tries again
                log.exception("disk sweep failed")
                self._touched = {**touched, **self._touched}
                continue
            for line in freed.lines():
                log.info("disk sweep: %s", line)

    def sweep(self, live: Iterable[str] = (), touched: dict[str, int] | None = None) -> Freed:
        """Expire rooms (`--room-ttl`), hold each room under each store's bound, then the data
        folder under its budget; what it dropped. `live`: the rooms loaded now; `touched`: rooms
        joined or left since the last sweep, and when."""
        live = set(live)
        with self._lock:
            freed = Freed()
            for room, at in (touched or {}).items():
                self.openings.opened([room], at)
            self.openings.opened(live, now_ms())  # a room open for days is not idle
            self._expire(live, freed)
            self._bound(freed)
            self._budget(live, freed)
            self.sweeps += 1
            return freed

    def _expire(self, live: set[str], freed: Freed) -> None:
        if not self.limits.room_ttl:
            return
        cutoff = now_ms() - int(self.limits.room_ttl * DAY_MS)
        for room, at in self.openings.last_opened().items():
            if at >= cutoff or room in live:
                continue
            for history, _ in self.histories:
                freed.add(history.name, history.forget(room))
            freed.forgotten.append(room)
            log.warning("room %s: nobody opened it for %.4g days (--room-ttl): deleted it", room, self.limits.room_ttl)

    def _bound(self, freed: Freed) -> None:
        for history, per_room in self.histories:
            if not per_room:
                continue
            for room, n in history.usage().items():
                if n > per_room:
                    freed.add(history.name, history.trim(room, per_room))

    def _budget(self, live: set[str], freed: Freed) -> None:
        budget = self.limits.data_bytes
        if self.folder is None or not budget:
            self.refusal = None
            return
        freed.before = folder_bytes(self.folder)
        used = self._reclaimed()
        if used > budget:
            for room in self._trim_order(live):
                for history, _ in self.histories:
                    freed.add(history.name, history.trim(room, 0))
                freed.rooms_trimmed.append(room)
                used = self._reclaimed()
                if used <= budget * LOW_WATER:
                    break
        freed.after = self.used = used
        was = self.refusal
        self.refusal = freed.refusal = None if used <= budget else (
            f"the server's data folder is over its budget ({used} of {budget} bytes, --data-bytes) even with every room's history "
            "trimmed: no new history (versions, run records) is kept until space is freed; drawing goes on")
        if self.refusal and not was:
            log.error("%s", self.refusal)
        elif was and not self.refusal:
            log.warning("the data folder is under its budget again (%d of %d bytes): history is kept again", used, budget)

    def _reclaimed(self) -> int:
        """The data folder's bytes once every store has handed back what it freed."""
        assert self.folder is not None
        for history, _ in self.histories:
            try:
                history.reclaim()
            except Exception as exc:  # busy: measured as it is, handed back at the next sweep
                log.warning("%s: cannot hand free space back: %s", history.name, exc)
        return folder_bytes(self.folder)

    def _trim_order(self, live: set[str]) -> list[str]:
        """Rooms with history, the one to trim first first: history bytes x time since opened,
        rooms loaded now last (largest first)."""
        sizes: dict[str, int] = {}
        for history, _ in self.histories:
            for room, n in history.usage().items():
                sizes[room] = sizes.get(room, 0) + n
        opened, now = self.openings.last_opened(), now_ms()

        def key(room: str) -> tuple[bool, int]:
            idle = 1 if room in live else max(1, now - opened.get(room, 0))
            return room in live, -sizes[room] * idle
        return sorted((r for r, n in sizes.items() if n), key=key)

    def gauges(self) -> dict[str, tuple[float, str]]:
        """For /metrics, read at scrape time."""
        out: dict[str, tuple[float, str]] = {
            "disk_history_refused": (int(self.refusal is not None), "1 while new history is refused: the data folder is over its budget."),
            "disk_sweeps_total": (self.sweeps, "Sweeps of the stores' history (bounds, budget, expiry)."),
        }
        if self.used is not None:
            out["disk_data_bytes"] = (self.used, "Bytes of the data folder at the last sweep (SQLite files by their live pages).")
        return out
