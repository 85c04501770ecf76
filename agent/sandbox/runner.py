"""Executes one program in one fresh VM and turns everything that happens into a RunRecord.

WHY here and not in vm.py: vm.py knows the wasm ABI; this module knows policy (limits,
error kinds, call tracing). Every way a run can end is mapped to exactly one error kind,
decided from host-side facts (trap codes, host-registered error identities, counters),
never from what a guest-made object claims to be.
"""
from __future__ import annotations

import functools
import json
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from typing import Any

import pydantic_core
from pydantic import BaseModel
from wasmtime import TrapCode

from .abi import WasmTrap
from .capability import ArgumentError, Bindings, CapabilityError, RawJSON
from .engine import deadline_ticks
from .record import CallRecord, ErrorKind, Limits, RunError, RunRecord, RunStats, scrub, well_formed
from .vm import VM, Snapshot

PENDING, FULFILLED, REJECTED = 0, 1, 2
CALL_PREVIEW = 2048  # bytes of a call's args/result kept in the trace
STORE_SLACK = 16 << 20  # linear memory beyond QuickJS's own limit (fragmentation, stack)
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode
_loads = pydantic_core.from_json
_to_json = functools.partial(pydantic_core.to_json, inf_nan_mode="null")  # Rust: ~10x json.dumps
_now = time.perf_counter
_LEVEL = {"0": "", "1": "warn: ", "2": "error: "}
# A \uD800-\uDFFF escape not itself escaped (an even run of backslashes before it). JSON.stringify
# is well-formed (ES2019): it writes surrogate PAIRS as characters, so every such escape it
# writes is a lone surrogate, which pydantic-core (rightly) refuses to parse.
_LONE_ESCAPE = re.compile(r"(?<!\\)((?:\\\\)*)\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


class Abort(Exception):
    """Raised inside a host callback to stop the VM (becomes a trap)."""


_CALL_FIELDS = set(CallRecord.model_fields)


_new = object.__new__
_d_set = BaseModel.__dict__["__dict__"].__set__  # slot setters: cheaper than object.__setattr__
_fs_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_ex_set = BaseModel.__dict__["__pydantic_extra__"].__set__
_pr_set = BaseModel.__dict__["__pydantic_private__"].__set__


def _call_record(name: str, args: Any, result: Any, dt: float, error: str | None) -> CallRecord:
    """CallRecord without validation (values are host-made): model_construct costs ~2 µs."""
    if type(result) is _Body:
        result = _clip_body(result)
    if type(args) is str:  # the raw JSON of arguments that parsed and validated
        args = _loads(args) if len(args) <= CALL_PREVIEW else _clip(args)
    elif type(args) is _Val:
        args = scrub(args.v)
    if error is not None:
        error = well_formed(error)
    m = _new(CallRecord)
    _d_set(m, {"name": name, "args": args, "result": result, "ms": round(dt * 1e3, 4), "error": error})
    _fs_set(m, _CALL_FIELDS)
    _ex_set(m, None)
    _pr_set(m, None)
    return m


def _clip(raw: str) -> str:
    return raw[:CALL_PREVIEW] + f"…(truncated, {len(raw)} chars)"


class _Val:
    """Trace args already in final form (a failed call)."""

    __slots__ = ("v",)

    def __init__(self, v: Any) -> None:
        self.v = v


class _Body:
    """A large encoded result kept as-is in the trace; clipped only when the record is built."""

    __slots__ = ("body",)

    def __init__(self, body: bytes) -> None:
        self.body = body


def _clip_body(b: _Body) -> str:
    body = b.body
    if body.isascii():  # the common case: no full decode just to count characters
        return body[:CALL_PREVIEW].decode("ascii") + f"…(truncated, {len(body)} chars)"
    return _clip(body.decode("utf-8", "surrogatepass"))


_inf = float("inf")


def _encode(out: Any) -> bytes:
    """A handler result as JSON bytes (scalars without a trip through pydantic-core)."""
    t = type(out)
    if t is float:
        return repr(out).encode() if -_inf < out < _inf else b"null"
    if t is int:
        return str(out).encode()
    if t is bool:
        return b"true" if out else b"false"
    if out is None:
        return b""
    if t is RawJSON:
        return out.encode()
    return _to_json(out)


class Run:
    """Host side of one run: capability dispatch, console, limits, trace."""

    def __init__(self, bindings: Bindings, limits: Limits, clock_ms: float | None = None, *, globals: Mapping[str, Any] | None = None,
                 collect: Sequence[str] = (), seed: int | None = None) -> None:
        self.caps = list(bindings)
        self.limits = limits
        self.clock_ms = float(time.time_ns() // 1_000_000) if clock_ms is None else clock_ms
        self.globals = dict(globals or {})
        self.collect = list(collect)
        self.seed = secrets.randbits(32) if seed is None else seed & 0xFFFFFFFF
        self.console_lines: list[str] = []
        self.console_size = 0
        # Flat: name, args, result, seconds, error per call (see _records).
        self.trace: list[Any] = []
        self._trace_cap = 5 * limits.max_calls
        self.host_errors: dict[int, str] = {}
        self.last_error: str | None = None
        self.abort: RunError | None = None
        self.failed = b"1unknown failure"

    # ---- Host protocol (called from inside wasm) ------------------------------------
    def call(self, cap_id: int, args_json: str) -> bytes | None:
        if cap_id >= len(self.caps):
            self._fail("1", f"unknown capability #{cap_id}")
            return None
        cap, handler = self.caps[cap_id]
        trace = self.trace
        if len(trace) >= self._trace_cap:
            self._abort("quota", f"capability call limit exceeded ({self.limits.max_calls} calls)")
        t0 = _now()
        args: Any = args_json
        try:
            parsed = _parse_args(args_json)
            args = parsed if len(args_json) <= CALL_PREVIEW else _clip(args_json)
            out = handler(cap.parse_args(parsed))
            if isinstance(out, BaseModel):
                out = out.model_dump(mode="json")
            body = _encode(out)
        except ArgumentError as e:
            trace.extend((cap.name, _Val(args), None, _now() - t0, f"TypeError: {e}"))
            self._fail("2", str(e))
            return None
        except CapabilityError as e:
            msg = f"{cap.name}: {e}"
            trace.extend((cap.name, _Val(args), None, _now() - t0, msg))
            self._fail("1", msg)
            return None
        except Abort:
            raise
        except Exception as e:  # a handler bug must not leak host internals into the guest
            trace.extend((cap.name, _Val(args), None, _now() - t0, f"internal error: {type(e).__name__}: {e}"))
            self._fail("1", f"{cap.name}: internal error")
            return None
        # Lazy: the raw args JSON (a str: no GC-tracked object survives the call) is parsed
        # again, and a large result clipped, only when the RunRecord is built.
        trace.extend((cap.name, args_json, out if len(body) <= CALL_PREVIEW else _Body(body), _now() - t0, None))
        return body

    def _fail(self, status: str, msg: str) -> None:
        self.last_error = ("TypeError: " if status == "2" else "") + msg
        self.failed = (status + msg).encode("utf-8", "surrogatepass")

    def failure(self) -> bytes:
        return self.failed

    def register_error(self, obj_ptr: int) -> None:
        if self.last_error is not None:
            self.host_errors[obj_ptr] = self.last_error
            self.last_error = None

    def console(self, line: str) -> None:
        self._out(_LEVEL.get(line[:1], "") + line[1:])

    def stdout(self, text: str) -> None:
        self._out(text.rstrip("\n"))

    def _out(self, text: str) -> None:
        text = well_formed(text)
        n = len(text.encode("utf-8")) + 1
        bound = self.limits.console_bytes
        if self.console_size + n > bound:
            room = bound - self.console_size
            if room > 0:
                kept = text.encode("utf-8")[:room].decode("utf-8", "ignore")
                self.console_lines.append(f"{kept}… [cut: console output is bounded to {bound} bytes]")
            self.console_size = bound
            self._abort("output", f"console output exceeded {bound} bytes")
        self.console_size += n
        self.console_lines.append(text)

    def _abort(self, kind: ErrorKind, message: str) -> None:
        self.abort = RunError(kind=kind, message=message)
        raise Abort(message)

    # ---- the run --------------------------------------------------------------------
    def execute(self, snap: Snapshot, code: str) -> RunRecord:
        t0, cpu0 = time.perf_counter(), time.thread_time()  # runs on a worker thread: its CPU time is this run's
        lim = self.limits
        vm = VM.restore(snap, memory_limit_bytes=len(snap.memory) + lim.memory_bytes + STORE_SLACK)
        vm.host = self
        whole = int(self.clock_ms)  # exact integer ns: Date.now() floors, so float error would show
        vm.clock_ns = whole * 1_000_000 + round((self.clock_ms - whole) * 1e6)
        result: Any = None
        collected: dict[str, Any] | None = None
        error: RunError | None = None
        start_ms = 0.0
        try:
            vm.store.set_epoch_deadline(deadline_ticks(lim.timeout_s))
            x = vm.x
            x["qjs_set_memory_limit"](lim.memory_bytes)
            x["qjs_set_max_stack_size"](min(lim.stack_bytes, snap.stack_pointer - (128 << 10)))
            install, _, _, unwrap, _ = snap.fns
            # +1: a line longer than the bound still reaches the host, which cuts it and says so
            spec = _dumps({"caps": [[c.name, i] for i, (c, _) in enumerate(self.caps)], "line": lim.console_bytes + 1,
                           "seed": self.seed, "globals": self.globals})
            if x["qjs_is_exception"](vm.call(install, vm.new_string(spec))):
                raise RuntimeError("capability install failed")
            start_ms = (time.perf_counter() - t0) * 1e3
            deadline = t0 + lim.timeout_s
            p = vm.eval(code)
            if x["qjs_is_exception"](p):
                error = self._describe(vm, x["qjs_get_exception"](), syntax=True)
            else:
                error = self._settle(vm, p, deadline)
                if error is None:
                    v = vm.call(unwrap, x["qjs_promise_result"](p))
                    if x["qjs_is_promise"](v):  # a promise as completion value is awaited too
                        error = self._settle(vm, v, deadline)
                        v = x["qjs_promise_result"](v)
                if error is None:
                    error = self._drain(vm, deadline)  # fire-and-forget jobs still run
                if error is None:
                    result, error = self._serialize(vm, v)
                if error is None and self.collect:
                    collected, error = self._collect(vm)
        except WasmTrap as t:
            inner = vm.pending_error
            error = self.abort or self._trap_error(inner if isinstance(inner, WasmTrap) else t)
        except Abort:
            error = self.abort
        finally:
            peak = vm.mem.size()
            vm.close()
        wall = (time.perf_counter() - t0) * 1e3
        return RunRecord(
            ok=error is None, result=result if error is None else None, error=error,
            collected=collected if error is None else None,
            console=self.console_lines,
            calls=self._records(),
            stats=RunStats(wall_ms=round(wall, 3), start_ms=round(start_ms, 3), memory_peak_bytes=peak,
                           calls=len(self.trace) // 5, console_bytes=self.console_size,
                           clock_ms=self.clock_ms, seed=self.seed, cpu_ms=round((time.thread_time() - cpu0) * 1e3, 3)))

    def _records(self) -> list[CallRecord]:
        t = self.trace
        return [_call_record(t[i], t[i + 1], t[i + 2], t[i + 3], t[i + 4]) for i in range(0, len(t), 5)]

    def _settle(self, vm: VM, p: int, deadline: float) -> RunError | None:
        """Run jobs until promise `p` settles; a rejection becomes the run's error."""
        x = vm.x
        while x["qjs_promise_state"](p) == PENDING:
            if not x["qjs_is_job_pending"]():
                return RunError(kind="timeout", message="the program awaited a promise that can never settle")
            if time.perf_counter() > deadline:
                return RunError(kind="timeout", message=f"timed out after {self.limits.timeout_s:g} s")
            x["qjs_execute_pending_job"]()
        if x["qjs_promise_state"](p) == REJECTED:
            return self._describe(vm, x["qjs_promise_result"](p))
        return None

    def _drain(self, vm: VM, deadline: float) -> RunError | None:
        x = vm.x
        while x["qjs_is_job_pending"]():
            if time.perf_counter() > deadline:
                return RunError(kind="timeout", message=f"timed out after {self.limits.timeout_s:g} s")
            x["qjs_execute_pending_job"]()
        return None

    def _serialize(self, vm: VM, v: int) -> tuple[Any, RunError | None]:
        x, lim = vm.x, self.limits
        s = vm.call(vm.snap.fns[1], v)  # type: ignore[union-attr]
        if x["qjs_is_exception"](s):
            err = self._describe(vm, x["qjs_get_exception"]())
            if err.kind == "js":
                err.message = "result is not JSON-serialisable: " + err.message
            return None, err
        raw = vm.read_string(s)
        if len(raw.encode("utf-8", "surrogatepass")) > lim.result_bytes:
            return None, RunError(kind="output", message=f"result exceeded {lim.result_bytes} bytes")
        if not raw:
            return None, None
        try:
            return _parse_json(raw), None
        except ValueError as e:
            return None, RunError(kind="output", message=f"the result could not be returned: {_json_problem(e)}")

    def _collect(self, vm: VM) -> tuple[dict[str, Any] | None, RunError | None]:
        """The globals named in `collect`, as the program left them (bounded like the result)."""
        x = vm.x
        s = vm.call(vm.snap.fns[4], vm.new_string(_dumps(self.collect)))  # type: ignore[union-attr]
        names = ", ".join(self.collect)
        if x["qjs_is_exception"](s):
            err = self._describe(vm, x["qjs_get_exception"]())
            if err.kind == "js":
                err.kind, err.message, err.stack = "output", f"{names} is not JSON-serialisable: {err.message}", ""
            return None, err
        raw = vm.read_string(s)
        if len(raw.encode("utf-8", "surrogatepass")) > self.limits.result_bytes:
            return None, RunError(kind="output", message=f"{names} exceeded {self.limits.result_bytes} bytes")
        try:
            return _parse_json(raw), None
        except ValueError as e:
            return None, RunError(kind="output", message=f"{names} could not be read: {_json_problem(e)}")

    def _trap_error(self, t: WasmTrap) -> RunError:
        if t.code == TrapCode.INTERRUPT:
            return RunError(kind="timeout", message=f"timed out after {self.limits.timeout_s:g} s")
        if t.code == TrapCode.STACK_OVERFLOW:
            return RunError(kind="stack", message="stack limit exceeded (wasm call stack exhausted)")
        return RunError(kind="memory", message=f"the VM stopped: {str(t).splitlines()[0]}")

    def _describe(self, vm: VM, exc_box: int, syntax: bool = False) -> RunError:
        """Classify an exception value; host-thrown errors are recognised by identity."""
        x = vm.x
        ptr = vm.object_ptr(exc_box)
        if ptr and ptr in self.host_errors:
            return RunError(kind="capability", message=well_formed(self.host_errors[ptr]))
        try:
            d = vm.call(vm.snap.fns[2], exc_box)  # type: ignore[union-attr]
            info = json.loads(vm.read_string(d)) if not x["qjs_is_exception"](d) else {}
        except WasmTrap:
            raise
        except Exception:
            info = {}
        name, msg = well_formed(str(info.get("name", "Error"))), well_formed(str(info.get("message", "unknown error")))
        stack = well_formed(str(info.get("stack", ""))[:4096])
        kind: ErrorKind = "js"
        if syntax and name == "SyntaxError":
            kind = "syntax"
        elif name == "InternalError" and "out of memory" in msg or (not info and vm.mem.size() > self.limits.memory_bytes):
            kind = "memory"
        elif name in ("RangeError", "InternalError") and ("stack" in msg.lower()):
            kind = "stack"
        label = f"{name}: {msg}" if name not in ("string", "number", "object", "boolean", "undefined", "bigint", "symbol") else f"uncaught {name}: {msg}"
        if kind == "memory":
            label = f"memory limit exceeded ({self.limits.memory_bytes} bytes): {label}"
        elif kind == "stack":
            label = f"stack limit exceeded: {label}"
        return RunError(kind=kind, message=label, stack=stack)


def _parse_json(raw: str) -> Any:
    """JSON the guest's JSON.stringify wrote; lone surrogates (escaped by it) become U+FFFD."""
    try:
        return _loads(raw)
    except ValueError:
        if "\\u" not in raw:
            raise
        return _loads(_LONE_ESCAPE.sub(r"\1\\ufffd", raw))


def _json_problem(e: ValueError) -> str:
    """What is wrong with a value the guest handed over, in words fit for the model."""
    if "recursion limit" in str(e):
        return "it is nested too deeply (arrays/objects more than ~200 levels deep); return a flatter summary"
    return f"it is not valid JSON ({e})"


def _parse_args(args_json: str) -> Any:
    try:
        return _parse_json(args_json)
    except ValueError as e:
        raise ArgumentError(f"arguments could not be read: {_json_problem(e)}") from None
