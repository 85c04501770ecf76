"""The browser fixtures: the web bundle built once per run, and a headless Chromium per test
(Playwright for Python driving Debian's Chromium, installed by bin/dev).

Chromium is not shared across tests: Playwright's sync API keeps its event loop marked as
running in the thread between calls, and the asyncio tests that run on the same worker then
cannot start theirs. A launch costs about a second; a test that uses the browser takes 5-15 s."""

from __future__ import annotations

import fcntl
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support import ROOT

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(scope="session")
def web_build() -> None:
    """`node web/build.mjs` once per run: the first worker builds, under a lock, the others see its mark."""
    ARTIFACTS.mkdir(exist_ok=True)
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID", f"pid{os.getpid()}")
    mark = ARTIFACTS / ".web-build"
    with open(ARTIFACTS / ".web-build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (mark.exists() and mark.read_text() == run):
            subprocess.run(["node", "web/build.mjs"], cwd=ROOT, check=True, timeout=120)
            mark.write_text(run)


@pytest.fixture
def browser(web_build: None) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Debian's chromium is missing: run the tests through `bin/dev test`"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()
