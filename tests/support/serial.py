"""Tests marked `serial` (timing-sensitive: latency budgets, rate-limit windows, cluster leases
and faults, frame times) never overlap one another and share the machine with at most one other
test, even when pytest-xdist runs the rest in parallel.

xdist's `--dist loadgroup` sends every `serial` test to one worker (one `xdist_group`), so they
run one after another. Beside them, the other workers' tests take turns through slots: one file
lock per worker; a test holds one slot while it runs, a serial test holds every slot but one. So
while a serial test runs, one other test may run with it: on 2 cores that is one test per core,
not the three or four a free-running suite puts there (which is what makes a 2-s lease or a
latency budget flaky), and the rest of the suite does not stand still for the serial group's
minutes. A gate lock, taken before the slots, lets a serial test in ahead of the tests waiting
(they cannot starve it). Without xdist (`-n 0`) nothing is locked.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO

import pytest

GROUP = "serial"
BESIDE_SERIAL = 1
"""How many other tests may run while a serial one does."""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "serial: timing-sensitive; runs apart under pytest-xdist (support/serial.py)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker(GROUP):
            item.add_marker(pytest.mark.xdist_group(GROUP))


@contextmanager
def _locked(path: Path, mode: int = fcntl.LOCK_EX) -> Iterator[IO[str]]:
    with open(path, "a") as f:
        fcntl.flock(f, mode)
        try:
            yield f
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _any_slot(slots: list[Path]) -> IO[str]:
    """Wait for a free slot and hold it (the caller holds the gate, so only it is waiting)."""
    while True:
        for path in slots:
            f = open(path, "a")
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return f
            except BlockingIOError:
                f.close()
        time.sleep(0.05)


@pytest.fixture(autouse=True)
def _serial_slots(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if "PYTEST_XDIST_WORKER" not in os.environ or workers < 2:
        yield
        return
    shared = tmp_path_factory.getbasetemp().parent  # one folder for all the workers of this run
    gate = shared / "serial.gate"
    slots = [shared / f"serial.slot{i}" for i in range(workers)]
    if request.node.get_closest_marker(GROUP):
        with ExitStack() as held:
            with _locked(gate):
                for path in slots[BESIDE_SERIAL:]:
                    held.enter_context(_locked(path))
            yield
        return
    with _locked(gate):
        slot = _any_slot(slots)
    try:
        yield
    finally:
        fcntl.flock(slot, fcntl.LOCK_UN)
        slot.close()
