"""Process-wide wasmtime Engine, compiled QuickJS module and epoch ticker.

WHY: compiling quickjs.wasm costs ~350 ms, so it happens once per machine (serialized
module cached on disk, keyed by wasmtime version + wasm hash + config) and once per
process (in-memory). The ticker thread is the ONLY wall-clock stop that works inside wasm
(SIGALRM handlers never run while wasm executes): every store gets an epoch deadline.

The wasm is package data (`assets/quickjs.wasm`, found through importlib.resources, so an
installed wheel needs no checkout and no node_modules); `ENGINE.json` pins the npm release it
comes from and its sha256, checked when the checkout's build copies it, when a wheel is built,
and here when it is loaded (it is hashed for the cache key anyway).
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import wasmtime

TICK_S = 0.005  # epoch granularity: a timeout fires within ~5 ms of its deadline
MAX_WASM_STACK = 2 << 20  # native wasm stack (must stay <= async_stack_size, 2 MiB)

_CONFIG_KEY = f"epoch=1;may_move=0;wasm_stack={MAX_WASM_STACK};cow=1"


class EngineMissing(RuntimeError):
    """The package holds no quickjs.wasm, or not the pinned one."""


def engine_pin() -> dict[str, str]:
    """ENGINE.json: the quickjs-wasi release the wasm comes from, its file names and sha256."""
    pin: dict[str, str] = json.loads(resources.files("agent.sandbox").joinpath("ENGINE.json").read_text())
    return pin


def wasm_bytes() -> tuple[bytes, str]:
    """The pinned quickjs.wasm and its sha256. `INHABIT_QUICKJS_WASM` names another file (not
    checked: an explicit choice, e.g. to try a new release)."""
    env = os.environ.get("INHABIT_QUICKJS_WASM")
    if env:
        raw = Path(env).read_bytes()
        return raw, hashlib.sha256(raw).hexdigest()
    pin = engine_pin()
    asset = resources.files("agent.sandbox") / "assets" / pin["wasm"]
    if not asset.is_file():
        raise EngineMissing(f"{pin['wasm']} is not in the package (agent/sandbox/assets/): in a checkout, "
                            "`node web/build.mjs` copies it from node_modules (bin/dev does)")
    raw = asset.read_bytes()
    sha = hashlib.sha256(raw).hexdigest()
    if sha != pin["sha256"]:
        raise EngineMissing(f"agent/sandbox/assets/{pin['wasm']} has sha256 {sha}, ENGINE.json pins {pin['package']} "
                            f"{pin['version']} with {pin['sha256']}: rebuild (`node web/build.mjs`)")
    return raw, sha


def cache_dir() -> Path:
    base = os.environ.get("INHABIT_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "inhabit")
    return Path(base)


@dataclass(frozen=True)
class Compiled:
    engine: wasmtime.Engine
    module: wasmtime.Module
    wasm_sha: str


_lock = threading.Lock()
_compiled: Compiled | None = None


def _make_engine() -> wasmtime.Engine:
    cfg = wasmtime.Config()
    cfg.epoch_interruption = True
    cfg.memory_may_move = False  # linear memory base stays put: we cache its address
    cfg.max_wasm_stack = MAX_WASM_STACK
    cfg.memory_init_cow = True
    return wasmtime.Engine(cfg)


def compiled() -> Compiled:
    """The process-wide engine + module; loads the on-disk cache or compiles and stores it."""
    global _compiled
    if _compiled is not None:
        return _compiled
    with _lock:
        if _compiled is not None:
            return _compiled
        engine = _make_engine()
        raw, sha = wasm_bytes()
        key = hashlib.sha256(f"{_wt_version()}|{sha}|{_CONFIG_KEY}".encode()).hexdigest()[:32]
        path = cache_dir() / f"quickjs-{key}.cwasm"
        module = None
        if path.exists():
            try:
                module = wasmtime.Module.deserialize_file(engine, str(path))
            except Exception:
                module = None
        if module is None:
            module = wasmtime.Module(engine, raw)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(f".{os.getpid()}.tmp")
                tmp.write_bytes(module.serialize())
                os.replace(tmp, path)
            except OSError:
                pass  # cache is an optimisation only
        _compiled = Compiled(engine, module, sha)
        _start_ticker(engine)
        return _compiled


def _wt_version() -> str:
    from importlib.metadata import version
    return version("wasmtime")


def _start_ticker(engine: wasmtime.Engine) -> None:
    def tick() -> None:
        # Catch up on late wake-ups so epochs track wall time, not sleep() accuracy.
        t0, done = time.monotonic(), 0
        while True:
            time.sleep(TICK_S)
            due = int((time.monotonic() - t0) / TICK_S)
            while done < due:
                engine.increment_epoch()
                done += 1

    threading.Thread(target=tick, name="inhabit-epoch", daemon=True).start()


def deadline_ticks(timeout_s: float) -> int:
    return max(1, int(timeout_s / TICK_S + 0.999)) + 1
