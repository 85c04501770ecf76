"""Thin, fast binding of quickjs-wasi's wasm ABI (see node_modules/quickjs-wasi/dist/index.js).

WHY: wasmtime-py's generic `Func.__call__` re-reads the function type and boxes every value
(~10-30 µs per call); the imports go through a generic trampoline that does the same. Here
exports are called with `wasmtime_func_call_unchecked` on a preallocated raw-value buffer and
imports are `wasmtime_func_new_unchecked` callbacks, so one crossing costs ~1 µs of ctypes.
Linear memory never moves (engine config), so its base address is cached.
"""
from __future__ import annotations

import ctypes
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, NoReturn, TypeVar

import wasmtime
from wasmtime import Func, FuncType, Store, TrapCode
from wasmtime import _bindings as ffi

if TYPE_CHECKING:
    from _ctypes import CFuncPtr  # what typeshed calls ctypes' private `_CFuncPtr`

_RAW = ffi.wasmtime_val_raw_t
_trap_new = ffi._wasmtime_trap_new


class WasmTrap(Exception):
    """A trap (epoch deadline, stack exhaustion, host abort) or wasmtime error."""

    def __init__(self, message: str, code: TrapCode | None) -> None:
        super().__init__(message)
        self.code = code


def _raise_trap(trap: int | None, err: int | None) -> NoReturn:
    if err:
        e = wasmtime.WasmtimeError._from_ptr(ctypes.cast(err, ctypes.POINTER(ffi.wasmtime_error_t)))
        raise WasmTrap(str(e), None)
    t = wasmtime.Trap._from_ptr(ctypes.cast(trap or 0, ctypes.POINTER(ffi.wasm_trap_t)))
    raise WasmTrap(t.message, t.trap_code)


_raw_call = ffi.dll["wasmtime_func_call_unchecked"]  # private copy: wasmtime-py keeps its own
_raw_call.restype = ctypes.c_void_p
# No per-call argtype conversion: every argument is pre-built. ctypes accepts None here (it
# clears the argtypes) but typeshed declares only a sequence.
_raw_call.argtypes = None  # type: ignore[assignment]


class Export:
    """Callable wasm export with i32 params/result and a reusable raw buffer.

    ~0.6 µs per call instead of ~5 µs through `Func.__call__`.
    """

    __slots__ = ("_args", "_slots", "_n", "_trap", "_buf", "_func_keepalive")

    def __init__(self, store: Store, func: Func, nslots: int) -> None:
        n = max(nslots, 1)
        self._buf = (_RAW * n)()
        self._slots = (ctypes.c_int32 * (4 * n)).from_buffer(self._buf)  # 16-byte raw slots
        self._trap = ctypes.c_void_p()
        self._n = n
        self._args = (ctypes.c_void_p(ctypes.cast(store._context(), ctypes.c_void_p).value),
                      ctypes.c_void_p(ctypes.addressof(func._func)),
                      ctypes.c_void_p(ctypes.addressof(self._buf)), ctypes.c_size_t(n),
                      ctypes.c_void_p(ctypes.addressof(self._trap)))
        self._func_keepalive = func

    def __call__(self, *args: int) -> int:
        slots = self._slots
        i = 0
        for a in args:
            slots[i] = a if a < 0x80000000 else a - 0x100000000
            i += 4
        err = _raw_call(*self._args)
        if err or self._trap.value:
            t, self._trap.value = self._trap.value, None
            _raise_trap(t, err)
        return slots[0]

    def call2(self, a: int, b: int) -> int:
        """Two non-negative i32 arguments (pointers/lengths): the host-call hot path."""
        slots = self._slots
        slots[0] = a
        slots[4] = b
        err = _raw_call(*self._args)
        if err or self._trap.value:
            t, self._trap.value = self._trap.value, None
            _raise_trap(t, err)
        return slots[0]

    def f64(self) -> float:
        return self._buf[0].f64


def make_trap(message: str) -> int:
    """A fresh wasm_trap_t* as an int, for returning from an unchecked host callback."""
    b = message.encode()
    return ctypes.cast(_trap_new(b, len(b)), ctypes.c_void_p).value or 0


# An import callback gets (env, caller, raw_args_and_results*, n) and returns 0 or a trap.
# Declared with plain integer types so ctypes builds no POINTER objects per call.
CB_RAW = ctypes.CFUNCTYPE(ctypes.c_size_t, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)
_new_raw = ffi.dll["wasmtime_func_new_unchecked"]
_new_raw.restype = None
_new_raw.argtypes = None  # type: ignore[assignment]  # None clears them; typeshed: sequence only


def new_host_func(store: Store, fty: FuncType, cb: CFuncPtr, env: int) -> Func:
    """Create an import from a module-level (long-lived) unchecked ctypes callback."""
    out = ffi.wasmtime_func_t()
    _new_raw(ctypes.cast(store._context(), ctypes.c_void_p), ctypes.cast(fty.ptr(), ctypes.c_void_p),
             cb, ctypes.c_void_p(env), ctypes.c_void_p(0), ctypes.byref(out))
    return Func._from_raw(out)


def unchecked_callback(fn: Callable[[int, int], int],
                       on_error: Callable[[int, BaseException], None] | None = None) -> CFuncPtr:
    """Wrap `fn(env, args_addr) -> 0|trap` as a wasmtime unchecked callback (keep a reference!).

    Raw slots are 16 bytes; parameter i's i32 is at args_addr + 16*i, the result goes in slot 0.
    """

    def tramp(env: int | None, caller: int | None, args: int, nargs: int) -> int:
        # ctypes hands a NULL c_void_p over as None; `args` is never NULL (every import has a
        # parameter or a result).
        try:
            return fn(env or 0, args)
        except BaseException as e:  # never unwind through wasm frames
            if on_error is not None:
                on_error(env or 0, e)  # e.g. a nested call's epoch trap: keep its real cause
            return make_trap(f"host error: {type(e).__name__}: {e}")

    return CB_RAW(tramp)


def params(addr: int, n: int) -> tuple[int, ...]:
    return struct.unpack_from("<" + "i12x" * n, ctypes.string_at(addr, 16 * n))


def set_result(addr: int, value: int) -> None:
    ctypes.c_int32.from_address(addr).value = value


_U32 = struct.Struct("<I").unpack_from
_I32 = struct.Struct("<i").unpack_from


class Mem:
    """Linear memory at a fixed base address (memory_may_move = False)."""

    __slots__ = ("base", "_mem", "_store", "view")

    def __init__(self, store: Store, mem: wasmtime.Memory) -> None:
        self._store = store
        self._mem = mem
        self.base = ctypes.addressof(mem.data_ptr(store).contents)
        # A view over the whole 4 GiB reservation: no copy, no per-read ctypes object.
        # Only addresses the guest handed us (always in bounds) are ever read through it.
        self.view = memoryview((ctypes.c_ubyte * (4 << 30)).from_address(self.base)).cast("B")

    def size(self) -> int:
        return self._mem.data_len(self._store)

    def read(self, ptr: int, n: int) -> bytes:
        return ctypes.string_at(self.base + ptr, n)

    def write(self, ptr: int, data: bytes) -> None:
        ctypes.memmove(self.base + ptr, data, len(data))

    def u32(self, ptr: int) -> int:
        return _U32(self.view, ptr)[0]

    def i32(self, ptr: int) -> int:
        return _I32(self.view, ptr)[0]

    def grow_to(self, nbytes: int) -> None:
        cur = self.size()
        if nbytes > cur:
            self._mem.grow(self._store, (nbytes - cur + 65535) // 65536)


_Extern = TypeVar("_Extern", wasmtime.Func, wasmtime.Memory, wasmtime.Global)


def export_get(store: Store, inst: wasmtime.Instance, name: str, kind: type[_Extern]) -> _Extern:
    """One export by name and kind (Instance.exports() would wrap all ~450 of them: ~10 ms)."""
    from wasmtime._extern import wrap_extern
    b = name.encode()
    item = ffi.wasmtime_extern_t()
    ok = ffi.wasmtime_instance_export_get(store._context(), ctypes.byref(inst._instance), b, len(b),
                                          ctypes.byref(item))
    if not ok:
        raise KeyError(name)
    extern = wrap_extern(item)
    if not isinstance(extern, kind):
        raise TypeError(f"export {name!r} is a {type(extern).__name__}, not a {kind.__name__}")
    return extern


def page_diff(old: bytes, new: bytes, page: int = 4096) -> list[tuple[int, bytes]]:
    """Runs of pages where `new` differs from `old` (old is zero-extended)."""
    runs: list[tuple[int, bytes]] = []
    start = -1
    for off in range(0, len(new), page):
        differs = new[off:off + page] != old[off:off + page].ljust(min(page, len(new) - off), b"\0")
        if differs and start < 0:
            start = off
        elif not differs and start >= 0:
            runs.append((start, new[start:off]))
            start = -1
    if start >= 0:
        runs.append((start, new[start:]))
    return runs
