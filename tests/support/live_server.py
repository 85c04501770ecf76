"""`LiveServer`: a REAL `python -m inhabit serve` subprocess on loopback (see CONTRACTS.md).

The server binds port 0 and reports the port the OS gave it (its "inhabit serving on" line), so
parallel test workers never race for a port; a restart binds the same port again. Tokens are
minted in this process with the server's own secret (what `inhabit token` does), not by
starting `python -m inhabit token` each time.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from itertools import count
from pathlib import Path
from typing import Any

import httpx

from common.access import Access

from support import ROOT

SERVING = re.compile(rb"inhabit serving on http://[^:/\s]+:(\d+)")
"""The line `inhabit serve` prints once it has bound its port."""
_logs = count()


class LiveServer:
    """`inhabit serve` on a loopback port the OS picks, with its own data dir; always cleaned up."""

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None, root: Path = ROOT, **config: Any) -> None:
        self.data_dir = Path(data_dir)
        self.root = root
        """The tree whose server runs (bench/tokens.py --before runs an older checkout's)."""
        self.port = 0  # known once started; a restart keeps it
        self.config = config
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.data_dir.parent / f"server-{os.getpid()}-{next(_logs)}.log"
        self._tokens: dict[tuple[str, str], str] = {}

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/rooms"

    def _args(self) -> list[str]:
        args = [sys.executable, "-m", "inhabit", "serve", "--host", "127.0.0.1", "--port", str(self.port), "--data", str(self.data_dir)]
        for key, value in self.config.items():
            flag = "--" + key.replace("_", "-")
            if value is True:
                args.append(flag)
            elif value not in (False, None):
                args += [flag, str(value)]
        return args

    def start(self, timeout: float = 60.0) -> LiveServer:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **(self.env or {})}
        env["PYTHONPATH"] = str(self.root) + os.pathsep + env.get("PYTHONPATH", "")
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self._args(), cwd=self.root, env=env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            if not self.port:
                self.port = self._reported_port(offset)
            if self.port and self._healthy():
                return self
            time.sleep(0.05)
        self.kill9()
        raise RuntimeError(f"server did not become healthy in {timeout} s:\n{self.log()}")

    def _reported_port(self, offset: int) -> int:
        """The port this start's "inhabit serving on" line names, or 0 while not printed yet."""
        with open(self.log_path, "rb") as f:
            f.seek(offset)
            m = SERVING.search(f.read())
        return int(m[1]) if m else 0

    def _healthy(self) -> bool:
        try:
            return httpx.get(self.http + "/healthz", timeout=0.5).status_code == 200
        except httpx.HTTPError:
            return False

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def token(self, room: str = "*", role: str = "edit") -> str:
        """A token for `room`, minted here with the secret the server uses (as `inhabit token`)."""
        key = (room, role)
        if key not in self._tokens:
            self._tokens[key] = self.access().mint(room, role)  # type: ignore[arg-type]
        return self._tokens[key]

    def access(self) -> Access:
        """The token authority `inhabit token --data DIR` opens with this server's environment:
        the cluster's (in PostgreSQL) with INHABIT_DATABASE_URL, else the data folder's;
        INHABIT_SECRET, when set, is the secret either way."""
        env = {**os.environ, **(self.env or {})}
        secret = env.get("INHABIT_SECRET") or None
        url = env.get("INHABIT_DATABASE_URL")
        if not url:
            return Access.load(self.data_dir, secret)
        if secret is None:
            from common.postgres import open_pool
            from common.shared_access import shared_secret

            pool = open_pool(url, 1)
            try:
                secret = shared_secret(pool)
            finally:
                pool.close()
        return Access(secret.encode())

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM and wait (graceful: the server flushes); SIGKILL if it hangs."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return proc.returncode if proc else None
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait(5)

    def kill9(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(5)

    def restart(self) -> LiveServer:
        """Graceful stop, then start again on the same port and data dir."""
        self.stop()
        return self.start()
