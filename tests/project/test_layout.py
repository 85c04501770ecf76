"""The package graph points one way (pyproject's import-linter contracts), and stays so.

browser/agent -> websocket -> room -> document -> store, and agent -> sandbox -> capability:
`inhabit` (composition root) > `server` | `agent` > `wire` > `common` | `canvas`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from support import ROOT

PACKAGES = ["inhabit", "server", "agent", "wire", "common", "canvas"]


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"],
                          cwd=root, env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=120)


def test_imports_point_one_way() -> None:
    out = lint_imports(ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout


def test_a_wrong_way_import_is_caught(tmp_path: Path) -> None:
    """The contracts can fail: the server importing the agent breaks them."""
    for name in PACKAGES:
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    rooms = tmp_path / "server" / "rooms.py"
    rooms.write_text(rooms.read_text() + "\nimport agent.plugin  # wrong way\n")
    out = lint_imports(tmp_path)
    assert out.returncode != 0
    assert "server.rooms -> agent.plugin" in out.stdout


def test_no_import_is_optional() -> None:
    """A failed import is an error, not a silently missing feature."""
    for name in PACKAGES:
        for path in (ROOT / name).rglob("*.py"):
            assert not re.search(r"except\s*\(?[^)\n]*ImportError", path.read_text()), f"{path} swallows an ImportError"


def test_no_test_module_imports_another() -> None:
    """Shared test code lives in tests/support (agent_helpers, pages, model_server, ...) and conftest."""
    for path in (ROOT / "tests").rglob("test_*.py"):
        assert not re.search(r"^\s*(from|import)\s+test_", path.read_text(), re.M), f"{path.name} imports a test module"
