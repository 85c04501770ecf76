"""Limits and the structured record of one run (the sandbox's whole output contract)."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

MiB = 1 << 20
KiB = 1 << 10

ErrorKind = Literal["syntax", "js", "timeout", "memory", "stack", "output", "capability", "quota"]


class Limits(BaseModel):
    """Per-run resource limits. Exceeding one ends the run with an error naming it."""

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


class RunRecord(BaseModel):
    ok: bool
    result: Any = None
    error: RunError | None = None
    console: list[str] = Field(default_factory=list)
    calls: list[CallRecord] = Field(default_factory=list)
    stats: RunStats
