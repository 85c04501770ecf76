"""Perf: 10,000 strokes in a room; frame time of a pan in headless Chromium (printed, not asserted)."""

from __future__ import annotations

import json
from typing import Any

from support.pages import ARTIFACTS, open_page

N = 10_000

SEED = """async ([n, batch]) => {
  const { doc } = window.__inhabit; const map = doc.getMap('strokes');
  let s = 12345; const rnd = () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
  const colors = ['#1e1e1e', '#e03131', '#f08c00', '#2f9e44', '#1971c2', '#7048e8'];
  for (let b = 0; b < n; b += batch) {
    doc.transact(() => {
      for (let i = b; i < Math.min(n, b + batch); i++) {
        let x = rnd() * 8000 - 2000, y = rnd() * 5000 - 1500, a = rnd() * 6.28; const pts = [];
        const len = 12 + Math.floor(rnd() * 30);
        for (let k = 0; k < len; k++) { a += (rnd() - 0.5) * 0.8; x += Math.cos(a) * 6; y += Math.sin(a) * 6;
          pts.push(Math.round(x * 10) / 10, Math.round(y * 10) / 10, 0.5); }
        const id = 'perf-' + i;
        map.set(id, { id, points: pts, color: colors[i % colors.length], width: 2 + (i % 5) * 2,
          author: 'perf', kind: 'human', t: Date.now() });
      }
    });
    await new Promise(r => setTimeout(r, 30));
  }
  return map.size;
}"""

PAN = """async ([frames, dx, dy]) => {
  const I = window.__inhabit; const raf = () => new Promise(r => requestAnimationFrame(r));
  await raf(); await raf(); I.resetFrameTimes();
  const gaps = []; let last = performance.now();
  for (let i = 0; i < frames; i++) {
    const sg = Math.floor(i / 30) % 2 ? -1 : 1; I.camera.panBy(dx * sg, dy * sg); await raf(); const now = performance.now(); gaps.push(now - last); last = now;
  }
  const st = I.stats(); const q = (a, p) => { const s = [...a].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.floor(p * s.length))]; };
  return { draw_p50: st.p50, draw_p95: st.p95, draw_max: st.max, frame_p50: q(gaps, 0.5), frame_p95: q(gaps, 0.95),
           visible: st.visible, strokes: st.strokes, pathsBuilt: st.pathsBuilt, frames: st.frameTimes.length };
}"""


def test_pan_frame_time_with_10k_strokes(server: Any, browser: Any) -> None:
    writer = open_page(browser, server, "perf")
    assert writer.evaluate(SEED, [N, 1000]) == N
    viewer = open_page(browser, server, "perf")
    viewer.wait_for_function(f"window.__inhabit.strokes().size === {N}", timeout=60000)
    writer.close()

    viewer.evaluate("window.__inhabit.camera.set(0, 0, 1)")
    at_100 = viewer.evaluate(PAN, [120, -14, -7])
    viewer.screenshot(path=str(ARTIFACTS / "web-perf-100.png"))
    viewer.evaluate("window.__inhabit.camera.set(-2200, -1700, 0.1)")  # everything in view
    all_in_view = viewer.evaluate(PAN, [120, -3, -2])
    viewer.screenshot(path=str(ARTIFACTS / "web-perf-all.png"))
    print(f"\nPAN 10k strokes @100%: {json.dumps(at_100)}")
    print(f"PAN 10k strokes all in view (10%): {json.dumps(all_in_view)}")
    assert at_100["strokes"] == N and at_100["frames"] > 0 and at_100["visible"] > 0
    assert all_in_view["visible"] > N * 0.8
