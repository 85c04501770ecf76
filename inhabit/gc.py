"""`inhabit gc`: the server's disk sweep, now, from the command line, and what it freed.

Why a command as well as the server's periodic sweep (`common.disk.DiskBudget.run`): an operator
who lowers a bound, or whose disk is filling, wants the space back now and wants to see how much
came back; and only a stopped server's files can be rewritten (`--vacuum`). It opens the same
stores `inhabit serve` would with the same settings (flags and `INHABIT_*`), so it trims to the
same per-room bounds, budget and `--room-ttl`: the data folder's SQLite files, or PostgreSQL in
cluster mode (`--database`).
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from contextlib import ExitStack
from pathlib import Path

from agent.behaviours.records import BehaviourRecords
from agent.runs.records import RunRecords
from common.disk import SQLITE_SUFFIXES, DiskBudget, folder_bytes
from common.postgres import DatabaseError, open_pool, redact_url
from server.app import DB_FILE
from server.cluster.snapshots import Snapshots
from server.settings import ServerSettings
from server.store import Store


def sweep(settings: ServerSettings, vacuum: bool = False) -> list[str]:
    """Sweep the stores `settings` name (see the module); the report's lines."""
    limits = settings.disk
    with ExitStack() as stack:
        if settings.clustered:
            assert settings.cluster.database_url is not None
            pool = open_pool(settings.cluster.database_url, 2)
            stack.callback(pool.close)
            room_store: Store | Snapshots = Snapshots(pool, settings.versions_kept, limits.room_versions_bytes)
            where: Path | object = pool
            disk = DiskBudget(limits, room_store)
            lines = [f"PostgreSQL {redact_url(settings.cluster.database_url)}: per-room bounds and --room-ttl (no --data-bytes in cluster mode)"]
        else:
            folder = Path(settings.data)
            if not (folder / DB_FILE).exists():
                return [f"no data in {folder}: nothing to do"]
            room_store = Store(folder / DB_FILE, settings.versions_kept, limits.room_versions_bytes)
            stack.callback(room_store.close)
            where, disk = folder, DiskBudget(limits, room_store, folder)
            lines = []
        runs = RunRecords.open(where)  # type: ignore[arg-type]  # a folder or a pool, as the server opens them
        stack.callback(runs.close)
        behaviours = BehaviourRecords.open(where)  # type: ignore[arg-type]
        if not settings.clustered:
            stack.callback(behaviours.close)  # (PostgreSQL: the pool, closed above)
        before = folder_bytes(Path(settings.data)) if not settings.clustered else 0  # the stores open (a missing one made)
        disk.add(room_store, limits.room_versions_bytes)
        disk.add(runs, limits.room_runs_bytes)
        disk.add(behaviours, limits.room_firings_bytes)
        freed = disk.sweep()
        lines += freed.lines() or ["nothing over its bounds: nothing dropped"]
    if not settings.clustered:
        if vacuum:
            lines += [vacuum_file(path) for path in sorted(folder.iterdir()) if path.suffix in SQLITE_SUFFIXES]
        after = folder_bytes(folder)
        lines.append(f"freed {before - after} bytes: the data folder holds {after} bytes (SQLite files by their live pages)")
    return lines


def vacuum_file(path: Path) -> str:
    """Rewrite a SQLite file without its free pages (and with auto_vacuum = INCREMENTAL from then
    on, so later trims shrink it as they go). Holds the file while it runs: a stopped server's."""
    size = path.stat().st_size
    db = sqlite3.connect(path, timeout=5.0, isolation_level=None)
    try:
        db.execute("PRAGMA auto_vacuum=INCREMENTAL")
        db.execute("VACUUM")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except sqlite3.Error as exc:
        return f"{path.name}: not vacuumed ({exc}); is the server running?"
    finally:
        db.close()
    return f"{path.name}: {size} -> {path.stat().st_size} bytes on disk"


def main(args: argparse.Namespace, settings: ServerSettings) -> int:
    try:
        lines = sweep(settings, vacuum=args.vacuum)
    except (DatabaseError, OSError, sqlite3.Error) as exc:
        print(f"inhabit gc: {exc}", file=sys.stderr)
        return 2
    for line in lines:
        print(line)
    return 0
