"""Generate the browser's TypeScript types from the pydantic models: `python -m inhabit.typegen`.

Why: the document schema and the HTTP payloads are defined once, in Python; the page must not
guess their shape. `tests/project/test_typegen.py` fails when the committed file is stale.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from agent.behaviours.model import BehaviourDetail, BehaviourList, BehaviourRemoved, BehaviourSummary, FiredEvent, Firing, FiringSummary, Writes
from agent.behaviours.presses import PressAccepted
from agent.contract.events import Every, MessageView, PressedWidget
from agent.runs.http import PromptAccepted, PromptRequest, RunList, UndoResult
from agent.runs.store import AgentRun, RunSummary, Tokens
from agent.sandbox import CallRecord
from agent.sandbox.capability import ts_type
from canvas import schema
from common.http import ApiError
from server.http import ChatCleared, ChatLine, ChatPage, StrokesResponse, WhoAmI
from server.versions import RestoreResponse, VersionInfo, VersionsResponse
from wire.protocol import NO_RETRY, Close

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "web" / "src" / "types.gen.ts"
SCHEMA_MD = ROOT / "canvas" / "SCHEMA.md"
DOC_TABLES: list[type[BaseModel]] = [schema.Stroke, schema.Widget, schema.Message]
"""Models whose field table is generated into SCHEMA.md between BEGIN/END GENERATED markers."""

Mode = Literal["validation", "serialization", "document"]
"""validation: what we accept (defaulted fields optional); serialization: what we send (every
field present); document: what writers store in the room (`to_doc`: None fields left out)."""

MODELS: list[tuple[type[BaseModel], Mode]] = [
    # the document, as `to_doc` and the browser write it: fields that default to None are absent
    (schema.Stroke, "document"),
    (schema.Widget, "document"),
    (schema.Message, "document"),
    # what the browser sends
    (PromptRequest, "validation"),
    # what the server answers: every field is present
    (WhoAmI, "serialization"),
    (ChatLine, "serialization"),
    (ChatPage, "serialization"),
    (ChatCleared, "serialization"),
    (PromptAccepted, "serialization"),
    (CallRecord, "serialization"),
    (Tokens, "serialization"),
    (AgentRun, "serialization"),
    (RunSummary, "serialization"),
    (RunList, "serialization"),
    (UndoResult, "serialization"),
    (Every, "serialization"),
    (MessageView, "serialization"),
    (PressedWidget, "serialization"),
    (FiredEvent, "serialization"),
    (Writes, "serialization"),
    (Firing, "serialization"),
    (FiringSummary, "serialization"),
    (BehaviourSummary, "serialization"),
    (BehaviourList, "serialization"),
    (BehaviourDetail, "serialization"),
    (BehaviourRemoved, "serialization"),
    (PressAccepted, "serialization"),
    (VersionInfo, "serialization"),
    (VersionsResponse, "serialization"),
    (RestoreResponse, "serialization"),
    # every refusal: `retry_after` is left out when it says nothing, as `document` fields are
    (ApiError, "document"),
    # `next` only on a page that has one
    (StrokesResponse, "document"),
]

CONSTANTS: dict[str, Any] = {
    "STROKES": schema.STROKES,
    "MESSAGES": schema.MESSAGES,
    "WIDGETS": schema.WIDGETS,
    "MAX_POINTS": schema.MAX_POINTS,
    "MAX_TEXT": schema.MAX_TEXT,
    "COORD_LIMIT": schema.COORD_LIMIT,
    "MAX_WIDGET_TEXT": schema.MAX_WIDGET_TEXT,
    "MAX_LABEL": schema.MAX_LABEL,
    "MAX_WIDGETS": schema.MAX_WIDGETS,
}

ENUMS: dict[str, dict[str, int]] = {"Close": {c.name: int(c) for c in Close}}
"""Emitted as `export const NAME = {...} as const`: the websocket close codes the server sends."""
LISTS: dict[str, list[int]] = {"NO_RETRY": sorted(int(c) for c in NO_RETRY)}
"""Close codes after which reconnecting fails the same way (as do 4400-4499)."""

HEADER = "// GENERATED from the pydantic models by `python -m inhabit.typegen` — do not edit.\n"


def _literal(value: Any) -> str:
    return f"'{value}'" if isinstance(value, str) else repr(value)


def _comment(text: str | None, indent: str) -> list[str]:
    if not text:
        return []
    lines = [ln.strip() for ln in text.strip().splitlines()]
    if len(lines) == 1:
        return [f"{indent}/** {lines[0]} */"]
    return [f"{indent}/**", *(f"{indent} * {ln}".rstrip() for ln in lines), f"{indent} */"]


def interface(model: type[BaseModel], mode: Mode, exported: set[str]) -> str:
    schema_ = model.model_json_schema(mode="validation" if mode == "validation" else "serialization")
    defs = schema_.get("$defs", {})
    properties = schema_.get("properties", {})
    if mode == "validation":
        required = set(schema_.get("required", []))
    elif mode == "serialization":
        required = set(properties)
    else:  # document: None-defaulted fields are left out, so they are optional and never null
        absent = {n for n, f in model.model_fields.items() if not f.is_required() and f.default is None}
        required = set(properties) - absent
        properties = {n: _drop_null(p) if n in absent else p for n, p in properties.items()}

    def named(ref: str) -> str | None:
        base = ref.removesuffix("-Input").removesuffix("-Output")
        return base if base in exported else None

    lines = _comment(model.__doc__, "")
    lines.append(f"export interface {model.__name__} {{")
    for name, prop in properties.items():
        lines += _comment(prop.get("description"), "  ")
        optional = "" if name in required else "?"
        lines.append(f"  {name}{optional}: {ts_type(prop, defs, named=named)}")
    lines.append("}")
    return "\n".join(lines)


def _drop_null(prop: dict[str, Any]) -> dict[str, Any]:
    """`T | null` -> `T` (for fields that are left out rather than null)."""
    variants = [v for v in prop.get("anyOf", []) if v.get("type") != "null"]
    if len(variants) != 1:
        return prop
    rest = {k: v for k, v in prop.items() if k != "anyOf"}
    return {**rest, **variants[0]}


def render() -> str:
    exported = {m.__name__ for m, _ in MODELS}
    parts = [HEADER]
    parts += [f"export const {k} = {_literal(v)}" for k, v in CONSTANTS.items()]
    for name, members in ENUMS.items():
        parts.append(f"export const {name} = {{" + ", ".join(f"{k}: {v}" for k, v in members.items()) + "} as const")
    for name, values in LISTS.items():
        parts.append(f"export const {name}: readonly number[] = [{', '.join(map(str, values))}]")
    parts.append("")
    parts += [interface(m, mode, exported) + "\n" for m, mode in MODELS]
    return "\n".join(parts)


def table(model: type[BaseModel]) -> str:
    """A Markdown field table: name, TypeScript type, description."""
    schema_ = model.model_json_schema(mode="validation")
    defs = schema_.get("$defs", {})
    rows = ["| field | type | meaning |", "|---|---|---|"]
    for name, prop in schema_.get("properties", {}).items():
        ts = ts_type(prop, defs).replace("|", "\\|")
        rows.append(f"| `{name}` | `{ts}` | {prop.get('description', '')} |")
    return "\n".join(rows)


def render_schema_md(text: str) -> str:
    for model in DOC_TABLES:
        begin, end = f"<!-- BEGIN GENERATED {model.__name__} -->", f"<!-- END GENERATED {model.__name__} -->"
        head, _, rest = text.partition(begin)
        _, _, tail = rest.partition(end)
        text = f"{head}{begin}\n{table(model)}\n{end}{tail}"
    return text


def outputs() -> dict[Path, str]:
    """Every generated file and what it should hold."""
    return {OUT: render(), SCHEMA_MD: render_schema_md(SCHEMA_MD.read_text())}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    stale = [path for path, text in outputs().items() if not path.exists() or path.read_text() != text]
    if "--check" in argv:
        for path in stale:
            print(f"{path} is stale: run `python -m inhabit.typegen`", file=sys.stderr)
        return 1 if stale else 0
    for path, text in outputs().items():
        path.write_text(text)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
