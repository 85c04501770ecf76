"""Start/stop the two servers under test and sample their CPU / RSS with psutil (bench helper)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
PY = ROOT / ".venv" / "bin" / "python"
NODE_SERVER = ROOT / "node_modules" / "@y" / "websocket-server" / "src" / "server.js"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tree(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return [proc]


@dataclass
class Server:
    kind: str  # "ours" | "node"
    cmd: list[str]
    env: dict[str, str]
    port: int
    ws_base: str
    log_path: Path
    popen: subprocess.Popen | None = None
    proc: psutil.Process | None = None
    peak_rss: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    tmp: tempfile.TemporaryDirectory | None = None

    def start(self, timeout: float = 30.0) -> None:
        log = open(self.log_path, "wb")
        self.popen = subprocess.Popen(
            self.cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
            start_new_session=True,
        )
        self.proc = psutil.Process(self.popen.pid)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.kind} server exited with {self.popen.returncode}; see {self.log_path}")
            try:
                url = f"http://127.0.0.1:{self.port}/healthz" if self.kind == "ours" else f"http://127.0.0.1:{self.port}/"
                with urllib.request.urlopen(url, timeout=1) as r:
                    if r.status == 200:
                        break
            except Exception:
                time.sleep(0.1)
        else:
            raise RuntimeError(f"{self.kind} server not ready in {timeout}s; see {self.log_path}")
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_rss = max(self.peak_rss, self.rss())
            time.sleep(0.1)

    def rss(self) -> int:
        total = 0
        for p in _tree(self.proc):
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
        return total

    def cpu_seconds(self) -> float:
        total = 0.0
        for p in _tree(self.proc):
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.Error:
                pass
        return total

    def reset_peak(self) -> None:
        self.peak_rss = self.rss()

    def stop(self) -> None:
        self._stop.set()
        if self.popen is not None and self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(5)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.popen.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.popen.wait(5)
        if self.tmp is not None:
            self.tmp.cleanup()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def make_server(kind: str, log_dir: Path, ours_cmd: str | None = None) -> Server:
    port = free_port()
    env = dict(os.environ)
    if kind == "node":
        env.update(HOST="127.0.0.1", PORT=str(port))
        return Server("node", ["node", str(NODE_SERVER)], env, port, f"ws://127.0.0.1:{port}",
                      log_dir / "node-server.log")
    tmp = tempfile.TemporaryDirectory(prefix="inhabit-bench-")
    if ours_cmd:
        cmd = ours_cmd.format(port=port, data=tmp.name, python=PY).split()
    else:
        cmd = [str(PY), "-m", "inhabit", "serve", "--host", "127.0.0.1", "--port", str(port),
               "--data", tmp.name, "--open"]
    srv = Server("ours", cmd, env, port, f"ws://127.0.0.1:{port}/rooms", log_dir / "ours-server.log")
    srv.tmp = tmp
    return srv


def py_spy_available() -> str | None:
    cand = ROOT / ".venv" / "bin" / "py-spy"
    return str(cand) if cand.exists() else None


if __name__ == "__main__":  # tiny smoke test: start and stop both
    for k in ("node", "ours"):
        s = make_server(k, Path(tempfile.gettempdir()))
        try:
            s.start()
            print(k, "up", s.ws_base, s.rss() >> 20, "MiB", file=sys.stderr)
        finally:
            s.stop()
