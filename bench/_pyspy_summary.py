"""Summarise a `py-spy record -f raw` (collapsed stacks) file: top self and inclusive frames.

    .venv/bin/python bench/_pyspy_summary.py /tmp/inhabit-fanout-*/ours-fanout.txt [--top 25]
"""

from __future__ import annotations

import re
import sys
from collections import Counter


def main() -> None:
    path = sys.argv[1]
    top = int(sys.argv[sys.argv.index("--top") + 1]) if "--top" in sys.argv else 25
    self_c: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    total = 0
    idle = 0
    for line in open(path):
        line = line.rstrip("\n")
        if not line:
            continue
        stack, _, n = line.rpartition(" ")
        n = int(n)
        total += n
        frames = [re.sub(r" \((.*/)?(site-packages/)?", " (", f) for f in stack.split(";")]
        frames = [f for f in frames if not f.startswith("process ") and not f.startswith("thread ")]
        if not frames:
            continue
        leaf = frames[-1]
        if any(k in leaf for k in ("select (selectors", "_run_once (asyncio/base_events", "poll (")) and "selectors" in leaf:
            idle += n
        self_c[leaf] += n
        for f in set(frames):
            incl[f] += n
    print(f"samples: {total}  (idle in selector: {100 * idle / max(total, 1):.1f}%)")
    print("\nTOP SELF")
    for f, n in self_c.most_common(top):
        print(f"  {100 * n / total:5.1f}%  {f}")
    print("\nTOP INCLUSIVE")
    for f, n in incl.most_common(top + 10):
        print(f"  {100 * n / total:5.1f}%  {f}")


if __name__ == "__main__":
    main()
