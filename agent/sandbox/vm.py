"""One QuickJS VM in one wasmtime Store, restored from the boot snapshot.

WHY: a fresh VM per run is the isolation guarantee (nothing a run does survives it), and
restoring a memory image is ~10x cheaper than booting QuickJS. Boot = instantiate,
_initialize, qjs_init, register the single raw host function, run the prelude, then copy
linear memory + __stack_pointer (what quickjs-wasi's own `snapshot()` keeps).
"""
from __future__ import annotations

import ctypes
import dataclasses
import os
import struct
import threading
from dataclasses import dataclass
from typing import Protocol

import wasmtime
from wasmtime import FuncType, Instance, Store, ValType

from . import abi
from .engine import compiled
from .prelude import PRELUDE

I32 = ValType.i32()
I64 = ValType.i64()
EVAL_ASYNC = 1 << 7
SCRATCH = 64 * 1024
TAG_INT, TAG_STRING = 0, -7


class Host(Protocol):
    """What a VM calls back into (one per run)."""

    def call(self, cap_id: int, args_json: str) -> bytes | None: ...  # JSON, or None = failed
    def failure(self) -> bytes: ...  # b"1<message>" (capability error) or b"2<message>" (TypeError)
    def console(self, line: str) -> None: ...  # may raise to abort the run
    def register_error(self, obj_ptr: int) -> None: ...
    def stdout(self, text: str) -> None: ...


@dataclass(frozen=True)
class Snapshot:
    memory: bytes
    stack_pointer: int
    runtime_ptr: int
    context_ptr: int
    fns: tuple[int, int, int, int, int]  # boxes: install, serialize, describe, unwrap, collect
    undefined: int
    scratch: int  # SCRATCH bytes of wasm_malloc'd buffer
    lenbuf: int
    dirty: tuple[tuple[int, bytes], ...]  # pages that differ from a just-instantiated module


_ARGV = struct.Struct("<II").unpack_from
_JSV = struct.Struct("<ii").unpack_from  # NaN-boxed JSValue: payload, tag
_U32 = struct.Struct("<I").unpack_from
_VMS: dict[int, VM] = {}
_ids = iter(range(1, 1 << 62))
_ids_lock = threading.Lock()


P = abi.params
R = abi.set_result




def _cb_zero(env: int, a: int) -> int:
    R(a, 0)
    return 0


def _cb_none(env: int, a: int) -> int:
    return 0


def _cb_clock(env: int, a: int) -> int:
    """Every clock (realtime and monotonic) reads the run's frozen start time.

    WHY frozen, as Cloudflare Workers do: the guest gets no timer to measure the host with
    (timing side channels), and a run is a function of its inputs, so it can be replayed."""
    vm = _VMS[env]
    out = ctypes.c_int32.from_address(a + 32).value & 0xFFFFFFFF
    vm.mem.write(out, vm.clock_ns.to_bytes(8, "little"))
    R(a, 0)
    return 0


def _cb_random(env: int, a: int) -> int:
    vm = _VMS[env]
    ptr, n = P(a, 2)
    vm.mem.write(ptr & 0xFFFFFFFF, os.urandom(min(n & 0xFFFFFFFF, 1 << 16)))
    R(a, 0)
    return 0


def _cb_fd_write(env: int, a: int) -> int:
    vm = _VMS[env]
    fd, iovs, n, nw = P(a, 4)
    if fd not in (1, 2):
        R(a, 8)  # EBADF
        return 0
    total, parts = 0, []
    for i in range(n):
        p, ln = vm.mem.u32(iovs + 8 * i), vm.mem.u32(iovs + 8 * i + 4)
        parts.append(vm.mem.read(p, ln))
        total += ln
    vm.mem.write(nw, total.to_bytes(4, "little"))
    R(a, 0)
    vm.host.stdout(b"".join(parts).decode("utf-8", "replace"))
    return 0


def _cb_nosys(env: int, a: int) -> int:
    R(a, 52)  # ENOSYS
    return 0


def _cb_fdstat(env: int, a: int) -> int:
    vm = _VMS[env]
    fd, stat = P(a, 2)
    if fd in (1, 2):
        vm.mem.write(stat, b"\x02" + b"\x00" * 23)
        R(a, 0)
    else:
        R(a, 8)
    return 0


def _on_cb_error(env: int, exc: BaseException) -> None:
    vm = _VMS.get(env)
    if vm is not None and vm.pending_error is None:
        vm.pending_error = exc


# The raw argument/result buffer wasmtime hands a callback lives in host memory at an address
# that varies per call; a memoryview over the user address space reads/writes it with struct
# instead of building two ctypes objects per call. Only addresses wasmtime passes are touched.
_LO = 1 << 16
_HOSTMEM = memoryview((ctypes.c_ubyte * ((1 << 47) - _LO)).from_address(_LO)).cast("B")
_ARGC_ARGV_AT = struct.Struct("<i12xi").unpack_from
_RESULT_INTO = struct.Struct("<i").pack_into


def _host_call_tramp(env: int, caller: int | None, a: int, nargs: int) -> int:
    """host_call, hand-inlined (one Python frame less on the hottest path).

    `env` is the VM's id (never 0) and `a` its raw argument buffer (never NULL).
    """
    try:
        argc, argv = _ARGC_ARGV_AT(_HOSTMEM, a + (48 - _LO))
        _RESULT_INTO(_HOSTMEM, a - _LO, _VMS[env].on_host_call(argc, argv))
        return 0
    except BaseException as e:  # never unwind through wasm frames
        _on_cb_error(env or 0, e)
        return abi.make_trap(f"host error: {type(e).__name__}: {e}")


# Long-lived ctypes callbacks shared by every store; `env` selects the VM.
_CBS = {name: abi.unchecked_callback(fn, _on_cb_error) for name, fn in {
    "zero": _cb_zero, "none": _cb_none, "clock": _cb_clock,
    "random": _cb_random, "fd_write": _cb_fd_write, "nosys": _cb_nosys, "fdstat": _cb_fdstat,
}.items()}
_CBS["host_call"] = abi.CB_RAW(_host_call_tramp)

# (module, name) -> (params, results, callback) in the module's import order.
_IMPORTS = {
    ("env", "host_get_timezone_offset"): ([I32, I32], [I32], "zero"),
    ("env", "host_interrupt"): ([], [I32], "zero"),
    ("env", "host_promise_rejection"): ([I32, I32, I32], [], "none"),
    ("env", "host_module_normalize"): ([I32, I32], [I32], "zero"),
    ("env", "host_module_load"): ([I32, I32], [I32], "zero"),
    ("env", "host_call"): ([I32] * 5, [I32], "host_call"),
    ("wasi_snapshot_preview1", "clock_time_get"): ([I32, I64, I32], [I32], "clock"),
    ("wasi_snapshot_preview1", "fd_close"): ([I32], [I32], "nosys"),
    ("wasi_snapshot_preview1", "fd_fdstat_get"): ([I32, I32], [I32], "fdstat"),
    ("wasi_snapshot_preview1", "fd_seek"): ([I32, I64, I32, I32], [I32], "nosys"),
    ("wasi_snapshot_preview1", "fd_write"): ([I32] * 4, [I32], "fd_write"),
    ("wasi_snapshot_preview1", "random_get"): ([I32, I32], [I32], "random"),
}

_FTYPES = {k: (FuncType(p, r), cb) for k, (p, r, cb) in _IMPORTS.items()}

_EXPORT_SLOTS = {
    "qjs_init": 1, "qjs_eval": 4, "qjs_call": 4, "qjs_new_string": 2, "qjs_new_host_function": 3,
    "qjs_get_string_len": 2, "qjs_free_cstring": 1, "qjs_is_exception": 1, "qjs_get_exception": 1,
    "qjs_promise_state": 1, "qjs_promise_result": 1, "qjs_is_job_pending": 1,
    "qjs_execute_pending_job": 1, "qjs_get_value_ptr": 1, "qjs_dup_value": 1, "qjs_get_global": 1,
    "qjs_set_prop_string": 3, "qjs_get_prop_uint32": 2, "qjs_get_undefined": 1,
    "qjs_set_memory_limit": 1, "qjs_set_max_stack_size": 1, "wasm_malloc": 1, "wasm_free": 1,
    "qjs_get_runtime_ptr": 1, "qjs_get_context_ptr": 1, "qjs_set_runtime_and_context": 2,
    "qjs_is_string": 1, "qjs_get_float64": 1, "qjs_is_promise": 1, "qjs_compute_memory_usage": 1, "_initialize": 1,
}


_STR_CHARS: int | None = None  # offset of the characters in a flat JSString, if verified


def _probe_string_layout(vm: VM) -> None:
    """Verify (never assume) the JSString layout the fast string reader depends on."""
    global _STR_CHARS
    for off in (24, 16, 20, 28, 32):
        ok = True
        for s, enc, wide in (("probe-\xe9", "latin-1", 0), ("pr\u20acbe", "utf-16-le", 1)):
            box = vm.new_string(s)
            if vm.mem.i32(box + 4) != TAG_STRING:
                return
            sp = vm.mem.u32(box)
            hdr = vm.mem.u32(sp)
            data = s.encode(enc)
            if hdr & 0x7FFFFFFF != len(s) or hdr >> 31 != wide or vm.mem.read(sp + off, len(data)) != data:
                ok = False
        if ok:
            _STR_CHARS = off
            return


class VM:
    """A live QuickJS instance. Not thread-safe: one thread drives it at a time."""

    def __init__(self, host: Host | None, memory_limit_bytes: int | None = None) -> None:
        c = compiled()
        self.host: Host = host  # type: ignore[assignment]
        self.store = Store(c.engine)
        if memory_limit_bytes is not None:
            self.store.set_limits(memory_size=memory_limit_bytes)
        self.store.set_epoch_deadline(1 << 40)
        with _ids_lock:
            self.id = next(_ids)
        _VMS[self.id] = self
        imports = []
        for imp in c.module.imports:
            fty, cb = _FTYPES[(imp.module, imp.name or "")]  # core-wasm imports always have a name
            imports.append(abi.new_host_func(self.store, fty, _CBS[cb], self.id))
        inst = Instance(self.store, c.module, imports)
        self.mem = abi.Mem(self.store, abi.export_get(self.store, inst, "memory", wasmtime.Memory))
        self._sp = abi.export_get(self.store, inst, "__stack_pointer", wasmtime.Global)
        self.x = {n: abi.Export(self.store, abi.export_get(self.store, inst, n, wasmtime.Func), k)
                  for n, k in _EXPORT_SLOTS.items()}
        self.snap: Snapshot | None = None
        self.pending_error: BaseException | None = None  # first exception raised in a callback
        self.clock_ns = 0  # what every guest clock reads (0 while booting: a deterministic snapshot)
        self._new_string = self.x["qjs_new_string"]
        self._scratch = 0

    def close(self) -> None:
        _VMS.pop(self.id, None)

    # ---- lifecycle -------------------------------------------------------------
    @classmethod
    def boot(cls) -> tuple[VM, Snapshot]:
        vm = cls(host=None)
        pristine = vm.mem.read(0, vm.mem.size())
        x = vm.x
        x["_initialize"]()
        if x["qjs_init"]() != 0:
            raise RuntimeError("qjs_init failed")
        scratch, lenbuf = x["wasm_malloc"](SCRATCH), x["wasm_malloc"](8)
        name = b"__inhabit_h"
        vm.mem.write(scratch, name + b"\0")
        fn = x["qjs_new_host_function"](scratch, len(name), 0)
        x["qjs_set_prop_string"](x["qjs_get_global"](), scratch, fn)
        res = vm.eval(PRELUDE, flags=0)
        if x["qjs_is_exception"](res):
            raise RuntimeError("prelude failed")
        fns = tuple(x["qjs_get_prop_uint32"](res, i) for i in range(5))
        undefined = x["qjs_get_undefined"]()
        snap = Snapshot(
            memory=vm.mem.read(0, vm.mem.size()),
            stack_pointer=vm._sp.value(vm.store),
            runtime_ptr=x["qjs_get_runtime_ptr"](), context_ptr=x["qjs_get_context_ptr"](),
            fns=fns, undefined=undefined, scratch=scratch, lenbuf=lenbuf,  # type: ignore[arg-type]
            dirty=())
        snap = dataclasses.replace(snap, dirty=tuple(abi.page_diff(pristine, snap.memory)))
        _probe_string_layout(vm)
        vm.close()
        return vm, snap

    @classmethod
    def restore(cls, snap: Snapshot, memory_limit_bytes: int | None = None) -> VM:
        vm = cls(host=None, memory_limit_bytes=memory_limit_bytes)
        vm.mem.grow_to(len(snap.memory))
        for off, data in snap.dirty:
            vm.mem.write(off, data)
        vm._sp.set_value(vm.store, wasmtime.Val.i32(snap.stack_pointer))
        vm.x["qjs_set_runtime_and_context"](snap.runtime_ptr, snap.context_ptr)
        vm.snap = snap
        vm._scratch = snap.scratch
        return vm

    # ---- values ------------------------------------------------------------------
    def new_string(self, s: str) -> int:
        data = s.encode("utf-8", "surrogatepass")
        return self.new_string_bytes(data)

    def new_string_bytes(self, data: bytes) -> int:
        n = len(data)
        sc = self._scratch
        if sc and n <= SCRATCH:
            self.mem.view[sc:sc + n] = data
            return self._new_string.call2(sc, n)
        p = self.x["wasm_malloc"](len(data) + 1)
        if not p:
            raise MemoryError("wasm_malloc failed")
        self.mem.write(p, data)
        box = self.x["qjs_new_string"](p, len(data))
        self.x["wasm_free"](p)
        return box

    def read_string(self, box: int) -> str:
        """String contents of a value box (fast path reads QuickJS's JSString directly)."""
        fast = self._read_flat_string(box)
        if fast is not None:
            return fast
        lenbuf = self.snap.lenbuf if self.snap else self.x["wasm_malloc"](4)
        p = self.x["qjs_get_string_len"](box, lenbuf)
        if not p:
            return ""
        n = self.mem.u32(lenbuf)
        out = self.mem.read(p, n).decode("utf-8", "surrogatepass")
        self.x["qjs_free_cstring"](p)
        return out

    def _read_flat_string(self, box: int) -> str | None:
        # NaN-boxed JSValue (wasm32): low word = pointer, high word = tag. JSString:
        # ref_count, len:31|wide:1, hash:30|atom_type:2, hash_next, then the chars.
        if self.mem.i32(box + 4) != TAG_STRING:
            return None
        off = _STR_CHARS
        if off is None:
            return None
        sp = self.mem.u32(box)
        hdr = self.mem.u32(sp)
        n, wide = hdr & 0x7FFFFFFF, hdr >> 31
        if wide:
            return self.mem.read(sp + off, 2 * n).decode("utf-16-le", "surrogatepass")
        return self.mem.read(sp + off, n).decode("latin-1")

    def object_ptr(self, box: int) -> int:
        return self.x["qjs_get_value_ptr"](box) & 0xFFFFFFFF

    def call(self, fn_box: int, *arg_boxes: int) -> int:
        snap = self.snap
        assert snap is not None
        argv = snap.lenbuf if len(arg_boxes) <= 2 else snap.scratch
        for i, b in enumerate(arg_boxes):
            ctypes.c_uint32.from_address(self.mem.base + argv + 4 * i).value = b
        return self.x["qjs_call"](fn_box, snap.undefined, len(arg_boxes), argv)

    def eval(self, code: str, filename: str = "agent.js", flags: int = EVAL_ASYNC) -> int:
        data = code.encode("utf-8", "surrogatepass")
        fname = filename.encode() + b"\0"
        p = self.x["wasm_malloc"](len(data) + 1 + len(fname))
        if not p:
            raise MemoryError("wasm_malloc failed")
        self.mem.write(p, data + b"\0" + fname)
        r = self.x["qjs_eval"](p, len(data), p + len(data) + 1, flags)
        return r

    def stack_pointer(self) -> int:
        return self._sp.value(self.store)

    # ---- host_call ---------------------------------------------------------------
    def on_host_call(self, argc: int, argv: int) -> int:
        view = self.mem.view
        if argc != 2:
            return self.x["qjs_get_undefined"]()
        a0, a1 = _ARGV(view, argv)
        cap, tag = _JSV(view, a0)
        if tag != TAG_INT:
            self.x["qjs_get_float64"](a0)
            cap = int(self.x["qjs_get_float64"].f64())
        if cap >= 0:
            # Fast path: a flat JSString read straight out of linear memory.
            sp, stag = _JSV(view, a1)
            sp &= 0xFFFFFFFF
            off = _STR_CHARS
            if stag == TAG_STRING and off is not None:
                hdr = _U32(view, sp)[0]
                n = hdr & 0x7FFFFFFF
                sp += off
                if hdr >> 31:
                    args = str(view[sp:sp + 2 * n], "utf-16-le", "surrogatepass")
                else:
                    args = str(view[sp:sp + n], "latin-1")
            else:
                args = self.read_string(a1)
            out = self.host.call(cap, args)
            if out is not None:
                n = len(out)
                sc = self._scratch
                if sc and n <= SCRATCH:  # one wasm call: copy into the scratch buffer, make a string
                    view[sc:sc + n] = out
                    return self._new_string.call2(sc, n)
                return self.new_string_bytes(out)
        elif cap == -3:
            return self.new_string_bytes(self.host.failure())
        if cap == -2:
            self.host.console(self.read_string(a1))
        elif cap == -1:
            self.host.register_error(self.object_ptr(a1))
            self.x["qjs_dup_value"](a1)  # keep it alive: its address is its identity
        # The C trampoline takes ownership of (frees) the returned box: always a fresh one.
        return self.x["qjs_get_undefined"]()
