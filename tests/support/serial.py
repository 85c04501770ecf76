"""Tests marked `serial` (timing-sensitive: latency budgets, rate-limit windows, cluster leases
and faults, frame times) never overlap one another and share the machine with at most one other
test, even when pytest-xdist runs the rest in parallel.

xdist's `--dist loadgroup` sends every `serial` test to one worker (one `xdist_group`), so they
run one after another. Beside them, the other workers' tests take turns through slots: one file
lock per worker; a test holds one slot while it runs, a serial test holds all slots but one
(whichever are free first). So
while a serial test runs, one other test may run with it: on 2 cores that is one test per core,
not the three or four a free-running suite puts there (which is what makes a 2-s lease or a
latency budget flaky), and the rest of the suite does not stand still for the serial group's
minutes. A gate lock, taken before the slots, lets a serial test in ahead of the tests waiting
(they cannot starve it). `@pytest.mark.serial(alone=True)` holds every slot: for a test that
flaked even with one test beside it. Without xdist (`-n 0`) nothing is locked.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
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


def _take_slots(slots: list[Path], wanted: int) -> list[IO[str]]:
    """Wait until `wanted` slots are free, whichever they are, and hold them (the caller holds
    the gate, so no one else is taking slots meanwhile)."""
    held: dict[Path, IO[str]] = {}
    while True:
        for path in slots:
            if path in held:
                continue
            f = open(path, "a")
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.close()
                continue
            held[path] = f
            if len(held) == wanted:
                return list(held.values())
        time.sleep(0.05)


def _release(files: list[IO[str]]) -> None:
    for f in files:
        fcntl.flock(f, fcntl.LOCK_UN)
        f.close()


@contextmanager
def slots(tmp_path_factory: pytest.TempPathFactory, *, serial: bool = False, alone: bool = False) -> Iterator[None]:
    """Hold the slots a test holds while it runs (one; a serial test all but one, or all):
    also for heavy work outside a test, such as a module fixture that builds and installs."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if "PYTEST_XDIST_WORKER" not in os.environ or workers < 2:
        yield
        return
    shared = tmp_path_factory.getbasetemp().parent  # one folder for all the workers of this run
    paths = [shared / f"serial.slot{i}" for i in range(workers)]
    wanted = workers if alone else workers - BESIDE_SERIAL if serial else 1
    with _locked(shared / "serial.gate"):
        held = _take_slots(paths, wanted)
    try:
        yield
    finally:
        _release(held)


@pytest.fixture(autouse=True)
def _serial_slots(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    mark = request.node.get_closest_marker(GROUP)
    with slots(tmp_path_factory, serial=mark is not None, alone=mark is not None and bool(mark.kwargs.get("alone"))):
        yield
