"""A run record under a byte limit, and its summary under a small one.

Why: a run record is kept in memory while its run is worked on, written to the records database,
and served whole by `GET /rooms/{name}/runs/{id}`; a program that made 9,999 calls used to make a
4.6 MB record. Calls are already kept as counts plus a bounded sample
(`agent.contract.callsample`); what else can grow (the programs, errors, the reply, the stroke
ids) is cut here, in stages, each only when the record is still over `limit` after the one
before: long programs and texts first, then the call sample, then the stroke ids (undo does
not need them: it erases the strokes tagged with the run in the room). The cuts are marked
("… [N more chars cut]", `calls_dropped`, `ids_dropped`), so nobody reads a cut record as whole.

The summary (`GET /rooms/{name}/runs`, one row of the records' `summary` column) is bounded by
construction: previews of the prompt, reply and errors, and the first stroke ids.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent.runs.store import AgentRun

MIN_RECORD_BYTES = 16 * 1024
"""The smallest byte limit a record may be given: what the last stage always fits in."""

Stage = Callable[["AgentRun", int], None]
"""One stage of cutting: the run, and by how many bytes it is over its limit."""

SUMMARY_PROMPT = 300
SUMMARY_REPLY = 500
SUMMARY_ERRORS = 3
SUMMARY_ERROR_CHARS = 300
SUMMARY_STROKES = 50
"""What a run's summary keeps: characters of its prompt and reply, its last errors, its first stroke ids."""


def clip(text: str, n: int) -> str:
    """`text`, cut to its first `n` characters with a marker saying how many more there were."""
    return text if len(text) <= n else text[:n] + f"… [{len(text) - n} more chars cut]"


def ends(items: list[str], keep: int, what: str) -> list[str]:
    """The first and last `keep // 2` of `items`, a marker between them when some are left out."""
    if len(items) <= keep:
        return items
    half = max(1, keep // 2)
    return [*items[:half], f"… [{len(items) - 2 * half} {what} cut]", *items[len(items) - half:]]


def _size(run: AgentRun) -> int:
    from agent.runs.store import dump_json

    return len(dump_json(run).encode())


def fit(run: AgentRun, limit: int) -> int:
    """Cut `run` (in place) until its JSON is at most `limit` bytes; its size then."""
    size = _size(run)
    if size <= limit:
        return size
    stages: list[Stage] = [_texts(8_000, 1_000, 10), _fewer_calls(5), _texts(1_000, 300, 6), _ids, _texts(200, 200, 4), _no_calls]
    for stage in stages:
        stage(run, size - limit)
        size = _size(run)
        if size <= limit:
            break
    return size


def _texts(code_chars: int, error_chars: int, keep: int) -> Stage:
    def stage(run: AgentRun, over: int) -> None:
        run.code = ends([clip(c, code_chars) for c in run.code], keep, "programs")
        run.errors = ends([clip(e, error_chars) for e in run.errors], keep, "errors")
        run.prompt = clip(run.prompt, max(code_chars, 500))
        if run.reply is not None:
            run.reply = clip(run.reply, max(code_chars // 2, 500))
    return stage


def _fewer_calls(keep: int) -> Stage:
    def stage(run: AgentRun, over: int) -> None:
        if len(run.calls) > 2 * keep:
            run.calls_dropped += len(run.calls) - 2 * keep
            run.calls = [*run.calls[:keep], *run.calls[len(run.calls) - keep:]]
    return stage


def _no_calls(run: AgentRun, over: int) -> None:
    run.calls_dropped += len(run.calls)
    run.calls = []


def _ids(run: AgentRun, over: int) -> None:
    """Leave out the last stroke ids (erased first, then drawn) until `over` bytes are saved."""
    for ids in (run.erased, run.widgets, run.strokes):
        while ids and over > 0:
            over -= len(ids.pop().encode()) + 3  # the id, its quotes and a comma
            run.ids_dropped += 1
