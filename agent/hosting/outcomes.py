"""What the model is told, in its first request, about the room's behaviours and how they went.

Why: "how did it go?" and "start a new game" need to know which behaviours exist, whether they
still run and what they last did; without this the model digs through records with executes
(or guesses). Every prompt in a room with behaviours gets it, whatever its grant, read from what
the room's behaviours keep in memory (`Behaviour.status`, `.reason`, `.firings`, `.last`): no
record is read to say it.

Bounded: at most SHOWN behaviours (the most recently changed first), each in at most LINE_CHARS
characters, so a room's block is at most about 2 kB whatever its behaviours hold.
"""

from __future__ import annotations

from agent.behaviours.model import Behaviour, FiringSummary
from agent.contract.events import describe_triggers
from canvas import now_ms

SHOWN = 10
LINE_CHARS = 200
HEADER = "Behaviours in this room (name, id, triggers: status — why; firings; the last one):"


def outcomes(behaviours: list[Behaviour], now: int | None = None) -> str:
    """The block for the first request ("" when the room has no behaviours), e.g.
    `- board (bh-1…, on stroke): stopped — game over: draw; 4 firings; last: a stroke 2 min ago, ok, drew 2`."""
    if not behaviours:
        return ""
    now = now_ms() if now is None else now
    newest = sorted(behaviours, key=lambda b: max(b.updated, b.created), reverse=True)
    lines = [_clip(_line(b, now)) for b in newest[:SHOWN]]
    if len(newest) > SHOWN:
        lines.append(f"- … and {len(newest) - SHOWN} more, changed longer ago")
    return HEADER + "\n" + "\n".join(lines)


def _line(b: Behaviour, now: int) -> str:
    """Each part cut to its share of LINE_CHARS, so the last firing is rarely cut off."""
    status = b.status + (f" — {_words(b.reason, 50)}" if b.reason else "")
    count = f"{b.firings} firing{'' if b.firings == 1 else 's'}"
    last = f"; last: {_last(b.last, now)}" if b.last is not None else ""
    return f"- {_words(b.name, 30)} ({b.id}, on {_words(describe_triggers(b.on), 30)}): {status}; {count}{last}"


def _last(f: FiringSummary, now: int) -> str:
    what = [f"a{'n' if f.type[0] in 'aeiou' else ''} {f.type} {_ago(now - f.t)}"]
    what.append("ok" if f.ok else f"failed: {_words(f.error or 'error', 40)}")
    for n, verb in ((f.drawn, "drew"), (f.erased, "erased"), (f.said, "said")):
        if n:
            what.append(f"{verb} {n}")
    if f.grant == "read":
        what.append("read-only")
    if f.undone:
        what.append("undone")
    return ", ".join(what)


def _ago(ms: int) -> str:
    s = max(0, ms) // 1000
    if s < 60:
        return f"{s} s ago"
    if s < 3600:
        return f"{s // 60} min ago"
    if s < 86_400:
        return f"{s // 3600} h ago"
    return f"{s // 86_400} d ago"


def _words(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _clip(line: str) -> str:
    return line if len(line) <= LINE_CHARS else line[: LINE_CHARS - 1] + "…"
