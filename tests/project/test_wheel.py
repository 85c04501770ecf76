"""inhabit installs like Python software (issue 20): the wheel and the sdist that `bin/dev dist`
builds (bin/dist.py, here into a temporary folder) each go into a fresh virtual environment
outside the checkout with pip, dependencies from the index as any user's, and run from a folder
with no checkout, no PYTHONPATH and no node/npm on PATH: `inhabit serve` serves the page and its
bundle, a websocket client syncs a room, `inhabit exec` runs a program in the sandbox against it,
and an MCP client initializes on /rooms/NAME/mcp."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from canvas import Stroke
from wire.client import CanvasClient

from support import ROOT
from support.live_server import SERVING
from support.mcp_helpers import mcp_client
from support.serial import slots

# Not `serial`: nothing here is timed (its waits are bounded conditions), and in the serial group
# its builds and installs would lengthen the one chain every timing-sensitive test waits in.
pytestmark = [pytest.mark.timeout(900), pytest.mark.xdist_group("wheel")]  # one build at a time, in one checkout


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory, web_build: None) -> dict[str, Path]:
    """The wheel and the sdist, built as `bin/dev dist` builds them (twice, compared)."""
    out = tmp_path_factory.mktemp("dist")
    with slots(tmp_path_factory):  # a heavy build: it counts as a running test (support/serial.py)
        done = subprocess.run([sys.executable, str(ROOT / "bin" / "dist.py"), "--no-web", "--out", str(out)],
                              capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("reproducible") == 2, done.stdout
    (wheel,), (sdist,) = out.glob("inhabit-*.whl"), out.glob("inhabit-*.tar.gz")
    return {"wheel": wheel, "sdist": sdist}


def user_env(venv: Path) -> dict[str, str]:
    """A user's environment: the venv's bin alone on PATH (no node, no npm), no PYTHONPATH;
    pip's own settings (index, cache) kept."""
    env = {k: v for k, v in os.environ.items() if k.startswith("PIP_") or k in ("HOME", "LANG", "TMPDIR", "XDG_CACHE_HOME")}
    env["PATH"] = str(venv / "bin")
    assert shutil.which("node", path=env["PATH"]) is None and shutil.which("npm", path=env["PATH"]) is None
    return env


def install(artifact: Path, where: Path) -> tuple[Path, dict[str, str]]:
    """A fresh venv in `where` with `artifact` pip-installed; its bin folder and environment."""
    venv = where / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    env = user_env(venv)
    done = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(artifact)],
                          cwd=where, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return venv / "bin", env


@contextmanager
def serving(bin_dir: Path, work: Path, env: dict[str, str]) -> Iterator[str]:
    """The installed `inhabit serve --port 0` run from `work`; its base URL once healthy."""
    log_path = work / "serve.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([str(bin_dir / "inhabit"), "serve", "--host", "127.0.0.1", "--port", "0"],
                                cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline, base = time.monotonic() + 60, ""
        while time.monotonic() < deadline and proc.poll() is None:
            if not base and (m := SERVING.search(log_path.read_bytes())):
                base = f"http://127.0.0.1:{int(m[1])}"
            if base and _healthy(base):
                break
            time.sleep(0.05)
        assert base and _healthy(base), f"inhabit serve did not come up:\n{log_path.read_text(errors='replace')[-4000:]}"
        yield base
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _healthy(base: str) -> bool:
    try:
        return httpx.get(base + "/healthz", timeout=0.5).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.parametrize("kind", ["wheel", "sdist"])
async def test_installed_package_runs_with_no_checkout_and_no_node(kind: str, dist: dict[str, Path], tmp_path: Path) -> None:
    bin_dir, env = install(dist[kind], tmp_path)
    work = tmp_path / "elsewhere"
    work.mkdir()

    def inhabit(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(bin_dir / "inhabit"), *args], cwd=work, env=env, capture_output=True, text=True, timeout=120)

    # the code and its assets come from the venv, not from the checkout
    where = subprocess.run([str(bin_dir / "python"), "-c", "import agent, server; print(agent.__file__); print(server.__file__)"],
                           cwd=work, env=env, capture_output=True, text=True, check=True).stdout.split()
    assert all(Path(p).is_relative_to(bin_dir.parent) for p in where), where
    assert inhabit("--version").stdout.strip() == "inhabit 0.1.0"
    module = subprocess.run([str(bin_dir / "python"), "-m", "inhabit", "--version"], cwd=work, env=env, capture_output=True, text=True)
    assert module.stdout.strip() == "inhabit 0.1.0"

    with serving(bin_dir, work, env) as base:
        assert (work / "data").is_dir()  # the data folder defaults to ./data
        page = httpx.get(base + "/")
        assert page.status_code == 200 and 'src="/assets/app.js"' in page.text
        bundle = httpx.get(base + "/assets/app.js")
        assert bundle.status_code == 200 and "javascript" in bundle.headers["content-type"] and len(bundle.content) > 10_000
        assert httpx.get(base + "/assets/app.css").status_code == 200

        minted = inhabit("token", "yard", "--data", "data")
        assert minted.returncode == 0, minted.stderr
        token = minted.stdout.split()[0]
        ws = base.replace("http", "ws", 1) + "/rooms"
        alice = await CanvasClient.connect(ws, "yard", token, name="alice")
        try:
            alice.doc.add_strokes([Stroke(id="s1", points=[1, 1, 0.5, 40, 30, 0.5])])
            bob = await CanvasClient.connect(ws, "yard", token, name="bob")
            try:
                await bob.wait_for(lambda d: d.stroke("s1"), 10)
            finally:
                await bob.close()
        finally:
            await alice.close()

        program = work / "count.js"
        program.write_text("canvas.strokes().map(s => s.id)")
        ran = inhabit("exec", str(program), "--room", f"{ws}/yard?token={token}")
        assert ran.returncode == 0, ran.stdout + ran.stderr
        assert json.loads(ran.stdout)["result"] == ["s1"]

        async with mcp_client(SimpleNamespace(http=base), "yard", token=token) as client:
            tools = await client.list_tools()
            assert {"search", "execute"} <= {t.name for t in tools.tools}

        told = inhabit("mcp", "yard", "--data", "data", "--url", base)
        assert told.returncode == 0 and f"{base}/rooms/yard/mcp" in told.stdout, told.stdout + told.stderr
        revoked = inhabit("revoke", token, "--data", "data")
        assert revoked.returncode == 0, revoked.stdout + revoked.stderr
        deadline = time.monotonic() + 10  # the server reads the revocation list within ~2 s
        while (status := httpx.get(f"{base}/rooms/yard/strokes", params={"token": token}, timeout=10).status_code) != 401 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert status == 401


def test_wheel_carries_the_package_and_its_two_assets_only(dist: dict[str, Path]) -> None:
    with zipfile.ZipFile(dist["wheel"]) as wheel:
        names = wheel.namelist()
    print(f"\n{dist['wheel'].name}: {dist['wheel'].stat().st_size} bytes, {len(names)} files\n" + "\n".join(names))
    assert {"agent/sandbox/assets/quickjs.wasm", "agent/sandbox/assets/LICENSE.quickjs-wasi", "agent/sandbox/ENGINE.json",
            "server/static/index.html", "server/static/app.js", "server/static/app.css"} <= set(names)
    tops = {name.split("/")[0] for name in names}
    assert tops == {"inhabit", "server", "agent", "wire", "common", "canvas", re.sub(r"-py3.*", "", dist["wheel"].name) + ".dist-info"}, tops
    assert not [n for n in names if "node_modules" in n or n.endswith((".ts", ".map")) or "/tests/" in n], names
