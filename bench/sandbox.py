"""Sandbox benchmark: ours (Python + wasmtime) vs quickjs-wasi's own Node.js host, same wasm.

Run: .venv/bin/python bench/sandbox.py   (needs `node` on PATH for the comparison)
Prints fresh-sandbox start p50/p99, µs per capability call, and a representative program
(read 50 strokes via a capability, compute bounding boxes, write 3 strokes) end to end.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pydantic import BaseModel  # noqa: E402

from agent.sandbox import Capability, Limits, Sandbox  # noqa: E402

PROGRAM = """
const all = canvas.strokes();
const boxes = all.map(s => {
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (const [x, y] of s.points) { if (x < x0) x0 = x; if (y < y0) y0 = y; if (x > x1) x1 = x; if (y > y1) y1 = y; }
  return { id: s.id, x0, y0, x1, y1 };
});
boxes.sort((a, b) => (b.x1 - b.x0) * (b.y1 - b.y0) - (a.x1 - a.x0) * (a.y1 - a.y0));
const made = [];
for (const b of boxes.slice(0, 3)) {
  made.push(canvas.draw([[b.x0, b.y0], [b.x1, b.y0], [b.x1, b.y1], [b.x0, b.y1], [b.x0, b.y0]], "#e33"));
}
({ n: boxes.length, made: made.map(m => m.n) })
"""
CALLS = "let s = 0; for (let i = 0; i < __N__; i++) s += t.f(i); s"


def workload() -> dict:
    rnd = random.Random(7)
    strokes = []
    for i in range(50):
        x, y = rnd.uniform(0, 1000), rnd.uniform(0, 1000)
        pts = []
        for _ in range(100):
            x += rnd.uniform(-5, 5)
            y += rnd.uniform(-5, 5)
            pts.append([round(x, 2), round(y, 2), 0.5])
        strokes.append({"id": f"s{i}", "color": "#222", "width": 2, "points": pts})
    return {"strokes": strokes, "program": PROGRAM, "calls_code": CALLS, "calls_n": 10000,
            "fresh_n": 500, "program_n": 100}


class NoParams(BaseModel):
    pass


class DrawParams(BaseModel):
    points: list[list[float]]
    color: str = "#000"


class FParams(BaseModel):
    x: float


def grants(strokes: list) -> list:
    drawn = [0]

    def draw(p: DrawParams) -> dict:
        drawn[0] += 1
        return {"id": f"n{drawn[0]}", "n": len(p.points), "color": p.color}

    return [(Capability("canvas.strokes", NoParams, list), lambda p: strokes),
            (Capability("canvas.draw", DrawParams, dict), draw),
            (Capability("t.f", FParams, float), lambda p: p.x)]


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(p * len(s)))]


def ours(w: dict) -> dict:
    sb = Sandbox()
    sb.warm()
    g = grants(w["strokes"])
    lim = Limits(timeout_s=30, max_calls=10**6)
    for _ in range(30):
        sb.run_sync("1+1")
    ts, starts = [], []
    for _ in range(w["fresh_n"]):
        t = time.perf_counter()
        r = sb.run_sync("1+1", g)
        ts.append((time.perf_counter() - t) * 1e3)
        starts.append(r.stats.start_ms)

    def best(code: str, n: int, clock=time.perf_counter) -> float:
        b = float("inf")
        for _ in range(n):
            t = clock()
            r = sb.run_sync(code, g, lim)
            assert r.ok, r.error
            b = min(b, clock() - t)
        return b

    t0 = best(CALLS.replace("__N__", "0"), 5)
    tn = best(CALLS.replace("__N__", str(w["calls_n"])), 5)
    # The same on this thread's CPU clock: what a call costs when the machine is not contended.
    c0 = best(CALLS.replace("__N__", "0"), 5, time.thread_time)
    cn = best(CALLS.replace("__N__", str(w["calls_n"])), 5, time.thread_time)
    cpu_fresh = []
    for _ in range(200):
        t = time.thread_time()
        sb.run_sync("1+1", g)
        cpu_fresh.append((time.thread_time() - t) * 1e3)
    check = sb.run_sync(PROGRAM, g)
    assert check.ok, check.error
    for _ in range(5):
        sb.run_sync(PROGRAM, g)
    ps = []
    for _ in range(w["program_n"]):
        t = time.perf_counter()
        sb.run_sync(PROGRAM, g)
        ps.append((time.perf_counter() - t) * 1e3)
    return {"fresh_p50_ms": pct(ts, 0.5), "fresh_p99_ms": pct(ts, 0.99),
            "vm_start_p50_ms": statistics.median(starts),
            "call_us": (tn - t0) / w["calls_n"] * 1e6, "call_cpu_us": (cn - c0) / w["calls_n"] * 1e6,
            "fresh_cpu_p50_ms": pct(cpu_fresh, 0.5),
            "program_p50_ms": pct(ps, 0.5), "program_p99_ms": pct(ps, 0.99), "program_check": check.result}


def node(w: dict) -> dict | None:
    if not shutil.which("node"):
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(w, f)
    try:
        out = subprocess.run(["node", str(ROOT / "bench" / "sandbox_node.mjs"), f.name], capture_output=True,
                             text=True, timeout=600)
    finally:
        os.unlink(f.name)
    if out.returncode != 0:
        print(out.stderr, file=sys.stderr)
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    w = workload()
    a = ours(w)
    b = node(w)
    rows = [("fresh sandbox + '1+1' p50 (ms)", "fresh_p50_ms"), ("fresh sandbox + '1+1' p99 (ms)", "fresh_p99_ms"),
            ("capability call (µs)", "call_us"), ("representative program p50 (ms)", "program_p50_ms"),
            ("representative program p99 (ms)", "program_p99_ms")]
    print(f"{'':36} {'ours':>10} {'node':>10} {'ours/node':>10}")
    for label, k in rows:
        nv = b.get(k) if b else None
        ratio = f"{a[k] / nv:10.2f}" if nv else f"{'-':>10}"
        print(f"{label:36} {a[k]:10.3f} {nv if nv is not None else float('nan'):10.3f} {ratio}")
    print(f"(ours: VM restore + capability install p50 {a['vm_start_p50_ms']:.3f} ms; thread CPU time: "
          f"fresh p50 {a['fresh_cpu_p50_ms']:.3f} ms, capability call {a['call_cpu_us']:.2f} µs)")
    print(f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    print("program result:", a["program_check"], "| node:", b and b.get("program_check"))
    if b and a["program_check"] != b.get("program_check"):
        print("WARNING: results differ")


if __name__ == "__main__":
    main()
