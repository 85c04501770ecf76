"""What a run record keeps of a run's capability calls: a count per capability name, and a
bounded sample of the calls themselves (the first `HEAD` and the last `TAIL`), each call's
arguments, result and error cut to a preview of `PREVIEW_BYTES` bytes of JSON.

Why: a program may make thousands of calls (`for (i < 9999) canvas.stroke(...)`); keeping each
one made a 4.6 MB record per execute, on disk and in memory. The counts say what a run did, the
first calls how it started, the last ones where it ended (usually where it failed), and a
record's size no longer grows with the number of calls. Model runs (`AgentRun`), MCP executes
and behaviours' firings (`Firing`) keep their calls the same way, through `keep_calls`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from agent.sandbox import CallRecord

HEAD = 20
"""The first calls a record keeps."""
TAIL = 20
"""The last calls a record keeps."""
PREVIEW_BYTES = 256
"""Of a call's arguments, result and error, the bytes of JSON kept (past it: a string with a cut marker)."""


def preview(value: Any, limit: int = PREVIEW_BYTES) -> Any:
    """`value` itself if its JSON is at most `limit` bytes; else that JSON cut at `limit` bytes
    (never inside a UTF-8 character), with a marker saying how much was cut."""
    text = json.dumps(value, default=str, ensure_ascii=False)
    if len(text) <= limit // 4:  # four bytes per character at most: short enough whatever it holds
        return value
    raw = text.encode("utf-8", "replace")
    if len(raw) <= limit:
        return value
    return raw[:limit].decode("utf-8", "ignore") + f"… [{len(raw) - limit} more bytes cut]"


def previewed(call: CallRecord, limit: int = PREVIEW_BYTES) -> CallRecord:
    """`call` with its arguments, result and error cut to previews."""
    cut: dict[str, Any] = {}
    for key in ("args", "result"):
        value = getattr(call, key)
        short = preview(value, limit)
        if short is not value:
            cut[key] = short
    if call.error is not None and len(call.error.encode("utf-8", "replace")) > limit:
        cut["error"] = preview(call.error, limit)
    return call.model_copy(update=cut) if cut else call


def keep_calls(calls: list[CallRecord], counts: dict[str, int], dropped: int, new: Sequence[CallRecord],
               head: int = HEAD, tail: int = TAIL) -> int:
    """Add `new` calls to a record's sample: `counts` counts every one by name; `calls` (changed
    in place) keeps the first `head` and the last `tail` of all the calls so far, previewed.
    Returns the new number of calls left out of the sample (`dropped` before).

    Only the calls that can end up in the sample are previewed (at most `head + tail` of `new`),
    so keeping 10,000 calls costs their counting, not their encoding."""
    for call in new:
        counts[call.name] = counts.get(call.name, 0) + 1
    if len(new) > head + tail:  # the middle of `new` can be in neither the first `head` nor the last `tail`
        chosen, skipped = [*new[:head], *new[len(new) - tail:]], len(new) - head - tail
    else:
        chosen, skipped = list(new), 0
    combined = calls + [previewed(c) for c in chosen]
    over = len(combined) - (head + tail)
    if over > 0:
        combined = combined[:head] + combined[len(combined) - tail:]
        skipped += over
    calls[:] = combined
    return dropped + skipped


def sample(new: Sequence[CallRecord], head: int = HEAD, tail: int = TAIL) -> tuple[list[CallRecord], dict[str, int], int]:
    """One run's calls as a record keeps them: (sample, counts by name, calls left out)."""
    calls: list[CallRecord] = []
    counts: dict[str, int] = {}
    dropped = keep_calls(calls, counts, 0, new, head, tail)
    return calls, counts, dropped
