"""Tests marked `serial` (timing-sensitive: latency budgets, rate-limit windows, cluster leases
and faults, frame times) run alone even when pytest-xdist runs the rest in parallel.

xdist's `--dist loadgroup` sends every `serial` test to one worker (one `xdist_group`), so they
never overlap one another; a lock shared by the workers keeps the other workers' tests out while
one runs: every other test holds the lock shared, a serial test holds it exclusive. A gate lock,
taken before either, gives the serial test priority (new tests wait at the gate instead of
starving it). Without xdist the lock is not taken.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import pytest

GROUP = "serial"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "serial: timing-sensitive; runs alone under pytest-xdist (support/serial.py)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker(GROUP):
            item.add_marker(pytest.mark.xdist_group(GROUP))


@contextmanager
def _locked(path: Path, mode: int) -> Iterator[IO[str]]:
    with open(path, "a") as f:
        fcntl.flock(f, mode)
        try:
            yield f
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@pytest.fixture(autouse=True)
def _serial_gate(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    if "PYTEST_XDIST_WORKER" not in os.environ:
        yield
        return
    shared = tmp_path_factory.getbasetemp().parent  # one folder for all the workers of this run
    gate, lock = shared / "serial.gate", shared / "serial.lock"
    if request.node.get_closest_marker(GROUP):
        with _locked(gate, fcntl.LOCK_EX), _locked(lock, fcntl.LOCK_EX):
            yield
        return
    with _locked(gate, fcntl.LOCK_EX):
        held = open(lock, "a")
        fcntl.flock(held, fcntl.LOCK_SH)
    try:
        yield
    finally:
        fcntl.flock(held, fcntl.LOCK_UN)
        held.close()
