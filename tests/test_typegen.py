"""The browser's types are generated from the pydantic models, and what is committed is current."""

from __future__ import annotations

from pathlib import Path

from inhabit import typegen

ROOT = Path(__file__).resolve().parent.parent


def test_committed_types_match_the_models() -> None:
    assert typegen.OUT.read_text() == typegen.render(), "web/src/types.gen.ts is stale: run `python -m inhabit.typegen`"


def test_generated_types_carry_the_model_shapes() -> None:
    text = typegen.render()
    assert 'status: "queued" | "running" | "done" | "failed"' in text  # no `| string` guessing
    assert "calls: CallRecord[]" in text and "strokes: Stroke[]" in text  # nested models by name
    assert "export const MAX_POINTS = 10000" in text
