"""Sandbox behaviour on real wasm: results, capabilities, isolation, declarations."""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pydantic import BaseModel, Field

from agent.sandbox import Capability, CapabilityError, Limits, Sandbox, declarations, markdown

from support import ROOT


class AddParams(BaseModel):
    a: int
    b: int = 0


class Point(BaseModel):
    x: float
    y: float


class DrawParams(BaseModel):
    points: list[tuple[float, float]] = Field(description="stroke points")
    color: str = "#000"


ADD = Capability("math.add", AddParams, int, doc="Add two integers.", example="math.add(1, 2) // 3")
DRAW = Capability("canvas.draw", DrawParams, Point, doc="Draw a stroke.")
FAIL = Capability("canvas.fail", AddParams, None)


def _fail(p: AddParams) -> None:
    raise CapabilityError("room is read-only")


BINDINGS = [(ADD, lambda p: p.a + p.b), (DRAW, lambda p: Point(x=p.points[0][0], y=len(p.points))),
          (FAIL, _fail)]


@pytest.fixture(scope="module")
def sb() -> Sandbox:
    s = Sandbox()
    s.warm()
    return s


@pytest.mark.timeout(30)
@pytest.mark.parametrize("code,result", [
    ("1 + 1", 2),
    ("await Promise.resolve(41) + 1", 42),
    ("const o = {a: [1, 'x', null]}; o", {"a": [1, "x", None]}),
    ("undefined", None),
    ("Promise.resolve(5)", 5),  # a promise completion value is awaited
    ("eval('1+2') + Function('return 4')()", 7),
    ("(async () => { await null; return 'later' })()", "later"),
])
def test_results(sb: Sandbox, code: str, result: object) -> None:
    r = sb.run_sync(code)
    assert r.ok, r.error
    assert r.result == result


@pytest.mark.timeout(30)
def test_console_captured(sb: Sandbox) -> None:
    r = sb.run_sync("console.log('a', 1, {b: 2}); console.warn('w'); console.error(new Error('e')); 0")
    assert r.ok
    assert r.console[0] == 'a 1 {"b":2}'
    assert r.console[1] == "warn: w"
    assert r.console[2].startswith("error: Error: e")


@pytest.mark.timeout(30)
def test_capability_calls_traced(sb: Sandbox) -> None:
    r = sb.run_sync("const p = canvas.draw([[3, 4], [5, 6]]); math.add(p.x, 2)", BINDINGS)
    assert r.ok and r.result == 5
    assert [c.name for c in r.calls] == ["canvas.draw", "math.add"]
    assert r.calls[0].args == [[[3, 4], [5, 6]]]
    assert r.calls[0].result == {"x": 3.0, "y": 2.0}
    assert r.calls[1].error is None and r.calls[1].ms >= 0
    assert r.stats.calls == 2


@pytest.mark.timeout(30)
@pytest.mark.parametrize("code", ["math.add('x')", "math.add()", "math.add(1, 2, 3)", "canvas.draw('nope')"])
def test_bad_args_are_type_errors(sb: Sandbox, code: str) -> None:
    r = sb.run_sync(f"try {{ {code}; 'no error' }} catch (e) {{ [e instanceof TypeError, e.message] }}", BINDINGS)
    assert r.ok
    is_type, msg = r.result
    assert is_type is True
    assert msg.startswith(code.split("(")[0] + ":")
    uncaught = sb.run_sync(code, BINDINGS)
    assert uncaught.error and uncaught.error.kind == "capability"
    assert "TypeError" in uncaught.error.message


@pytest.mark.timeout(30)
def test_capability_error(sb: Sandbox) -> None:
    r = sb.run_sync("try { canvas.fail(1) } catch (e) { [e instanceof Error, e.message] }", BINDINGS)
    assert r.result == [True, "canvas.fail: room is read-only"]
    r = sb.run_sync("canvas.fail(1)", BINDINGS)
    assert r.error.kind == "capability" and r.error.message == "canvas.fail: room is read-only"
    assert r.calls[0].error == "canvas.fail: room is read-only"


@pytest.mark.timeout(30)
def test_handler_bug_does_not_leak(sb: Sandbox) -> None:
    def bad(p: AddParams) -> int:
        raise KeyError("/etc/secret-path")
    r = sb.run_sync("math.add(1)", [(ADD, bad)])
    assert r.error.kind == "capability"
    assert "secret" not in r.error.message
    assert "secret" in (r.calls[0].error or "")  # the host-side trace keeps the detail


@pytest.mark.timeout(30)
def test_isolation_between_runs(sb: Sandbox) -> None:
    r = sb.run_sync("globalThis.leak = 1; Object.prototype.polluted = 2; Array.prototype.push = null; 0")
    assert r.ok
    r = sb.run_sync("[typeof leak, ({}).polluted, typeof [].push]")
    assert r.result == ["undefined", None, "function"]


@pytest.mark.timeout(30)
def test_only_granted_capabilities_exist(sb: Sandbox) -> None:
    r = sb.run_sync("[typeof canvas, typeof math, typeof __inhabit_h]", [BINDINGS[0]])
    assert r.result == ["undefined", "object", "undefined"]
    r = sb.run_sync("canvas.draw([[1, 2]])", [BINDINGS[0]])
    assert r.error.kind == "js" and "canvas" in r.error.message


@pytest.mark.timeout(30)
def test_declarations_and_markdown() -> None:
    ts = declarations([ADD, DRAW])
    assert "declare namespace math {" in ts
    assert "function add(a: number, b?: number): number;" in ts
    assert "function draw(points: [number, number][], color?: string): { x: number; y: number };" in ts
    assert "@example" in ts and "math.add(1, 2) // 3" in ts
    assert ADD.declaration().startswith("declare namespace math")
    md = markdown([ADD])
    assert "`math.add(a: number, b?: number): number`" in md and "(optional)" in md


@pytest.mark.timeout(60)
async def test_async_run_does_not_block_loop(sb: Sandbox) -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    t = asyncio.create_task(ticker())
    r = await sb.run("while (true) {}", limits=Limits(timeout_s=0.5))
    t.cancel()
    assert r.error.kind == "timeout"
    assert ticks >= 20


@pytest.mark.timeout(60)
def test_cli_exec(tmp_path: Path) -> None:
    f = tmp_path / "p.js"
    f.write_text("console.log('hi'); await Promise.resolve(6 * 7)")
    out = subprocess.run([sys.executable, "-m", "inhabit", "exec", str(f)], cwd=ROOT,
                         capture_output=True, text=True, timeout=50)
    assert out.returncode == 0, out.stderr
    rec = json.loads(out.stdout)
    assert rec["ok"] and rec["result"] == 42 and rec["console"] == ["hi"]
    f.write_text("while (true) {}")
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "inhabit", "exec", str(f), "--timeout", "0.3"], cwd=ROOT,
                         capture_output=True, text=True, timeout=50)
    assert out.returncode == 1 and json.loads(out.stdout)["error"]["kind"] == "timeout"
    assert time.monotonic() - t0 < 20
