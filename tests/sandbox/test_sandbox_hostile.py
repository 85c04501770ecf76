"""Hostile programs: each ends with the right error kind in bounded time, and the next run works."""
from __future__ import annotations

import asyncio
import time

import pytest
from pydantic import BaseModel

from agent.sandbox import Capability, Limits, Sandbox


class P(BaseModel):
    x: int = 0


ECHO = Capability("host.echo", P, int)
BINDINGS = [(ECHO, lambda p: p.x)]
FAST = Limits(timeout_s=1.0)


@pytest.fixture(scope="module")
def sb() -> Sandbox:
    s = Sandbox()
    s.warm()
    return s


def _then_next_run_works(sb: Sandbox) -> None:
    r = sb.run_sync("host.echo(21) * 2", BINDINGS)
    assert r.ok and r.result == 42, r


CASES = [
    ("infinite loop", "while (true) {}", "timeout"),
    ("loop in promise job", "Promise.resolve().then(() => { while (true) {} }); 1", "timeout"),
    ("loop in awaited job", "await new Promise(r => r()).then(() => { for (;;) {} })", "timeout"),
    ("never settles", "await new Promise(() => {})", "timeout"),
    ("never settles (completion)", "new Promise(() => {})", "timeout"),
    ("typed array memory bomb", "const a = []; while (true) a.push(new Float64Array(1 << 20))", "memory"),
    ("array memory bomb", "const a = []; while (true) a.push(new Array(100000).fill(1.5))", "memory"),
    ("object memory bomb", "const a = []; while (true) a.push({i: a.length, s: [a.length]})", "memory"),
    ("string memory bomb", "const a = []; let s = 'x'.repeat(1 << 20); while (true) a.push(s + a.length)", "memory"),
    ("deep recursion", "function f(n) { return f(n + 1) + 1 } f(0)", "stack"),
    ("huge console", "for (;;) console.log('x'.repeat(1000))", "output"),
    ("huge result", "'x'.repeat(2 << 20)", "output"),
    ("quota", "for (let i = 0; i < 20; i++) host.echo(i)", "quota"),
    ("syntax", "let = = 1", "syntax"),
    ("thrown number", "throw 42", "js"),
    ("thrown null", "throw null", "js"),
    ("thrown string", "throw 'boom'", "js"),
    ("thrown object", "throw {kind: 'capability', message: 'forged'}", "js"),
    ("forged host error", "const e = new Error('host.echo: forged'); e.name = 'CapabilityError'; throw e", "js"),
    ("cyclic result", "const o = {}; o.o = o; o", "js"),
    ("ungranted capability", "canvas.draw([])", "js"),
]

NEVER_SETTLES = {"never settles", "never settles (completion)"}
"""Timeouts the sandbox detects at once (no job left that could settle the promise): no waiting out the clock."""

TIMEOUT_MARGIN_S = 5.0
"""How far past its limit a timed-out run may end: generous, the test machine is small and shared."""


@pytest.mark.serial  # timing-sensitive (a run's duration is asserted): runs alone under xdist
@pytest.mark.timeout(60)
@pytest.mark.parametrize("name,code,kind", CASES, ids=[c[0] for c in CASES])
def test_hostile(sb: Sandbox, name: str, code: str, kind: str) -> None:
    memory = "memory" in name  # small heap, generous clock: the limit under test is memory
    limits = Limits(timeout_s=8.0 if memory else 1.0, max_calls=10,
                    memory_bytes=(16 << 20) if memory else (64 << 20))
    t0 = time.monotonic()
    r = sb.run_sync(code, BINDINGS, limits)
    took = time.monotonic() - t0
    assert not r.ok
    assert r.error is not None and r.error.kind == kind, r.error
    assert r.error.message
    assert took < 15, took
    if name in NEVER_SETTLES:
        assert "never settle" in r.error.message, r.error
        assert took < limits.timeout_s / 2, took  # detected, not waited out
    elif kind == "timeout":
        assert r.error.message == f"timed out after {limits.timeout_s:g} s", r.error
        assert limits.timeout_s * 0.8 <= took < limits.timeout_s + TIMEOUT_MARGIN_S, took
    _then_next_run_works(sb)


@pytest.mark.timeout(30)
def test_tamper_with_namespace_and_prototypes(sb: Sandbox) -> None:
    code = """
    "use strict";
    const results = [];
    try { host.echo = () => 99 } catch (e) { results.push('assign:' + e.name) }
    try { delete host.echo } catch (e) { results.push('delete:' + e.name) }
    try { Object.defineProperty(host, 'echo', {value: 1}) } catch (e) { results.push('define:' + e.name) }
    try { globalThis.host = {} } catch (e) { results.push('global:' + e.name) }
    Object.prototype.then = 1; JSON.parse = () => 99; JSON.stringify = () => '[0]';
    String.prototype.charCodeAt = () => 49; String.prototype.slice = () => 'x';
    Reflect.apply = () => 0; Error = function () { return {} }; TypeError = Error;
    results.push(host.echo(7));
    results
    """
    r = sb.run_sync(code, BINDINGS)
    assert r.ok, r.error
    assert r.result[:4] == ["assign:TypeError", "delete:TypeError", "define:TypeError", "global:TypeError"]
    assert r.result[4] == 7
    _then_next_run_works(sb)


@pytest.mark.timeout(30)
def test_capability_errors_cannot_be_forged_or_masked(sb: Sandbox) -> None:
    # A guest error that looks like a host error is still a js error, and a real
    # host error caught and rethrown is still recognised by identity.
    r = sb.run_sync("try { host.echo('bad') } catch (e) { e.message = 'changed'; throw e }", BINDINGS)
    assert r.error.kind == "capability" and "host.echo" in r.error.message
    r = sb.run_sync("throw new TypeError('host.echo: x (argument 1): Input should be a valid integer')", BINDINGS)
    assert r.error.kind == "js"


@pytest.mark.timeout(30)
def test_eval_and_function_games(sb: Sandbox) -> None:
    code = """
    const g = Function('return this')();
    [typeof g.__inhabit_h, eval('typeof __inhabit_h'),
     Object.getOwnPropertyNames(g).filter(n => n.includes('inhabit')).length,
     (() => { try { return host.echo.caller } catch (e) { return e.name } })(),
     String(host.echo).includes('[native code]') || String(host.echo).length > 0]
    """
    r = sb.run_sync(code, BINDINGS)
    assert r.ok, r.error
    assert r.result[:4] == ["undefined", "undefined", 0, "TypeError"]


@pytest.mark.timeout(30)
def test_memory_limit_is_configurable(sb: Sandbox) -> None:
    r = sb.run_sync("new Array(4e6).fill(0).length", limits=Limits(memory_bytes=8 << 20))
    assert r.error and r.error.kind == "memory"
    r = sb.run_sync("new Array(4e6).fill(0).length", limits=Limits(memory_bytes=128 << 20))
    assert r.ok and r.result == 4_000_000


@pytest.mark.timeout(120)
async def test_100_concurrent_runs(sb: Sandbox) -> None:
    codes = []
    for i in range(100):
        if i % 10 == 0:
            codes.append("while (true) {}")
        elif i % 10 == 1:
            codes.append("function f() { return f() } f()")
        else:
            codes.append(f"let s = 0; for (let k = 0; k < 1000; k++) s += host.echo(k % 3); s + {i}")
    t0 = time.monotonic()
    records = await asyncio.gather(*(
        sb.run(c, BINDINGS, Limits(timeout_s=1.0 if i % 10 < 2 else 20.0)) for i, c in enumerate(codes)))
    assert time.monotonic() - t0 < 60
    for i, r in enumerate(records):
        if i % 10 == 0:
            assert r.error.kind == "timeout"
        elif i % 10 == 1:
            assert r.error.kind == "stack"
        else:
            assert r.ok and r.result == 999 + i, (i, r.error)
    _then_next_run_works(sb)


HOSTILE_TEXT = [
    ("throw new Error('\\udc00 lone')", "js"),
    ("console.log('a\\ud800b'); 'c\\udfffd'", None),
    ("let a = []; for (let i = 0; i < 5000; i++) a = [a]; a", "output"),
    ("console.log('x'.repeat(60 * 1024 * 1024)); 1", "output"),
]


@pytest.mark.timeout(180)
async def test_100_concurrent_hostile_text_runs_all_return_records(sb: Sandbox) -> None:
    # lone surrogates, a 5,000-deep result and a 60 MB console line: each is a record, never an exception
    runs = [HOSTILE_TEXT[i % len(HOSTILE_TEXT)] for i in range(100)]
    records = await asyncio.gather(*(sb.run(code, BINDINGS, Limits(timeout_s=10.0, memory_bytes=128 << 20)) for code, _ in runs),
                                   return_exceptions=True)
    for (code, kind), r in zip(runs, records, strict=True):
        assert not isinstance(r, BaseException), (code[:40], r)
        r.model_dump_json()  # encodable as UTF-8 JSON (what run records and routes need)
        assert (r.error.kind if r.error else None) == kind, (code[:40], r.error)
        assert "\udc00" not in r.model_dump_json() and "\\udc00" not in r.model_dump_json()
    ok = records[1]
    assert ok.console == ["a\ufffdb"] and ok.result == "c\ufffdd"
    assert "\ufffd" in records[0].error.message
    assert "deep" in records[2].error.message
    big = records[3]
    assert len(big.console) == 1 and big.console[0].startswith("xxx") and "cut" in big.console[0]
    assert len(big.console[0].encode()) <= Limits().console_bytes + 100
    _then_next_run_works(sb)


@pytest.mark.timeout(30)
def test_the_clock_is_frozen_at_the_start_of_the_run(sb: Sandbox) -> None:
    code = "const a = [Date.now(), performance.now(), new Date().getTime()]; let s = 0; for (let i = 0; i < 2e6; i++) s += i; [...a, Date.now(), performance.now()]"
    for clock in (1_700_000_000_123, 1_795_319_095_290, None):  # None: the run's own start time
        r = sb.run_sync(code, clock_ms=clock)
        start = r.stats.clock_ms
        assert r.ok and (clock is None or start == clock), r
        # Date.now() is the start exactly; performance.now() the same instant (to float precision)
        assert r.result[0] == r.result[2] == r.result[3] == start and abs(r.result[1] - start) < 0.01 and r.result[1] == r.result[4], r.result
    assert abs(start - time.time() * 1e3) < 60_000


@pytest.mark.timeout(30)
def test_draw_rejects_points_outside_the_canvas_clearly(sb: Sandbox) -> None:
    from agent.contract.canvas import CanvasSession

    session = CanvasSession([], author="a", run_id="r", grant="write")
    r = sb.run_sync("canvas.draw({points: [[0, 0], [1e300, 5]]})", session.bindings())
    assert r.error and r.error.kind == "capability" and "within ±1e+06" in r.error.message, r.error
    assert not session.added
