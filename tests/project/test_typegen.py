"""The browser's types are generated from the pydantic models, and what is committed is current."""

from __future__ import annotations

from inhabit import typegen


def test_committed_files_match_the_models() -> None:
    for path, text in typegen.outputs().items():
        assert path.read_text() == text, f"{path} is stale: run `python -m inhabit.typegen`"


def test_schema_doc_tables_come_from_the_models() -> None:
    table = typegen.table(typegen.schema.Stroke)
    for name, field in typegen.schema.Stroke.model_fields.items():
        assert f"| `{name}` |" in table and (field.description or "") in table


def test_generated_types_carry_the_model_shapes() -> None:
    text = typegen.render()
    assert 'status: "queued" | "running" | "done" | "failed"' in text  # no `| string` guessing
    assert "calls: CallRecord[]" in text and "strokes: Stroke[]" in text  # nested models by name
    assert "export const MAX_POINTS = 10000" in text
