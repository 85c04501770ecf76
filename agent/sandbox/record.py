"""Limits and the structured record of one run (the sandbox's whole output contract)."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

MiB = 1 << 20
KiB = 1 << 10

ErrorKind = Literal["syntax", "js", "timeout", "memory", "stack", "output", "capability", "quota", "internal"]
"""`internal`: the host itself failed (a bug); the run still ends with a record, never an exception."""


def well_formed(text: str) -> str:
    """`text` with every lone surrogate replaced by U+FFFD (a split pair is rejoined).

    WHY: JS strings are UTF-16 and may hold lone surrogates; Python keeps them, but UTF-8 (JSON
    out, SQLite, Yjs) cannot encode them, so one such string in a record poisons every write of
    it. Everything guest-made is passed through this where it leaves the VM."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def scrub(value: Any) -> Any:
    """`value` (JSON-like) with `well_formed` applied to every string, keys included."""
    if isinstance(value, str):
        return well_formed(value)
    if isinstance(value, list):
        return [scrub(v) for v in value]
    if isinstance(value, dict):
        return {well_formed(k) if isinstance(k, str) else k: scrub(v) for k, v in value.items()}
    return value


class Limits(BaseModel):
    """Per-run resource limits. Exceeding one ends the run with an error naming it.

    Console: output past `console_bytes` (one huge line included) ends the run with kind
    "output"; the console keeps the first `console_bytes` with a "[cut …]" marker."""

    timeout_s: float = Field(2.0, gt=0, le=600)
    memory_bytes: int = Field(64 * MiB, ge=1 * MiB, le=2048 * MiB)
    stack_bytes: int = Field(1 * MiB, ge=16 * KiB, le=1 * MiB)
    console_bytes: int = Field(64 * KiB, ge=0)
    result_bytes: int = Field(1 * MiB, ge=0)
    max_calls: int = Field(10_000, ge=0)


class RunError(BaseModel):
    kind: ErrorKind
    message: str
    stack: str = ""


class CallRecord(BaseModel):
    name: str
    args: Any = None
    result: Any = None  # truncated preview for large results
    ms: float
    error: str | None = None


class RunStats(BaseModel):
    wall_ms: float
    start_ms: float  # fresh VM (restore + install) time
    memory_peak_bytes: int
    calls: int
    console_bytes: int
    clock_ms: float = 0.0  # the frozen clock: what Date.now() returned for the whole run
    seed: int = 0  # what Math.random was seeded with: with the clock and the inputs, a run replays exactly
    cpu_ms: float = 0.0  # CPU time of the run's thread (wasm, host calls, the record): what a CPU budget charges


class RunRecord(BaseModel):
    ok: bool
    result: Any = None
    error: RunError | None = None
    collected: dict[str, Any] | None = Field(default=None, description="the globals the host asked back, as the program left them (successful runs)")
    console: list[str] = Field(default_factory=list)
    calls: list[CallRecord] = Field(default_factory=list)
    stats: RunStats
