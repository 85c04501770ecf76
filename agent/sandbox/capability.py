"""Capabilities: the only doors out of the sandbox, described once for code, docs and types.

WHY: one definition (a pydantic params model whose fields are the JS positional params)
gives validation (bad args -> JS TypeError before the handler runs), the TypeScript
declaration the model writes code against, and Markdown docs.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError


class CapabilityError(Exception):
    """Raise from a handler to throw a clean `Error(message)` in JS."""


class RawJSON(str):
    """A handler result that is already JSON text: passed to the guest without re-encoding
    (e.g. a cached encoding of a large, unchanged stroke list)."""


class ArgumentError(Exception):
    """Arguments failed validation: becomes a JS TypeError."""


@dataclass(frozen=True)
class Capability:
    name: str
    params: type[BaseModel]
    returns: Any = None
    doc: str = ""
    example: str = ""
    _fields: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _required: int = field(init=False, repr=False, compare=False)
    _validate: Callable[[Any], BaseModel] = field(init=False, repr=False, compare=False)
    _fast: tuple[Callable[[list[Any]], dict[str, Any]], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        parts = self.name.split(".")
        if len(parts) < 2 or not all(p.isidentifier() for p in parts):
            raise ValueError(f"capability name must be dotted identifiers, got {self.name!r}")
        names = tuple(self.params.model_fields)
        req = [n for n, f in self.params.model_fields.items() if f.is_required()]
        object.__setattr__(self, "_fields", names)
        object.__setattr__(self, "_required", len(req))
        object.__setattr__(self, "_validate", self.params.__pydantic_validator__.validate_python)
        object.__setattr__(self, "_fast", _dict_builders(names))

    # ---- validation ----------------------------------------------------------------
    def parse_args(self, args: list[Any]) -> BaseModel:
        if type(args) is list and len(args) < len(self._fast):  # hot path: same checks, cheaper
            try:
                return self._validate(self._fast[len(args)](args))
            except ValidationError as e:
                raise self._arg_error(e) from None
        if not isinstance(args, list):
            raise ArgumentError(f"{self.name}: arguments must be positional")
        if len(args) > len(self._fields):
            raise ArgumentError(f"{self.name}: expected at most {len(self._fields)} argument(s) "
                                f"({', '.join(self._fields)}), got {len(args)}")
        try:
            return self._validate(dict(zip(self._fields, args, strict=False)))
        except ValidationError as e:
            raise self._arg_error(e) from None

    def _arg_error(self, e: ValidationError) -> ArgumentError:
        msgs = []
        for err in e.errors()[:3]:
            loc = err.get("loc") or ()
            where = ".".join(str(p) for p in loc) if loc else "arguments"
            idx = self._fields.index(loc[0]) + 1 if loc and loc[0] in self._fields else None
            pos = f" (argument {idx})" if idx else ""
            msgs.append(f"{where}{pos}: {err['msg']}")
        return ArgumentError(f"{self.name}: " + "; ".join(msgs))

    # ---- documentation -------------------------------------------------------------
    def signature(self) -> str:
        schema = self.params.model_json_schema()
        defs = schema.get("$defs", {})
        props = schema.get("properties", {})
        req = set(schema.get("required", []))
        ps = [f"{n}{'' if n in req else '?'}: {ts_type(props.get(n, {}), defs)}" for n in self._fields]
        return f"{self.name.split('.')[-1]}({', '.join(ps)}): {self._returns_ts()}"

    def _returns_ts(self) -> str:
        if self.returns is None:
            return "void"
        s = TypeAdapter(self.returns).json_schema()
        return ts_type(s, s.get("$defs", {}))

    def declaration(self) -> str:
        """TypeScript `declare namespace` block for this capability alone."""
        return declarations([self])

    def _doc_comment(self, indent: str) -> list[str]:
        lines = [f"{indent}/**"]
        lines += [f"{indent} * {ln}".rstrip() for ln in (self.doc or "").strip().splitlines()]
        schema = self.params.model_json_schema()
        for n, p in schema.get("properties", {}).items():
            if p.get("description"):
                lines.append(f"{indent} * @param {n} {p['description']}")
        if self.example:
            lines.append(f"{indent} * @example")
            lines += [f"{indent} * {ln}".rstrip() for ln in self.example.strip().splitlines()]
        lines.append(f"{indent} */")
        return lines if len(lines) > 2 else []

    def markdown(self) -> str:
        out = [f"### `{self.name.rsplit('.', 1)[0]}.{self.signature()}`", ""]
        if self.doc:
            out += [self.doc.strip(), ""]
        schema = self.params.model_json_schema()
        defs, req = schema.get("$defs", {}), set(schema.get("required", []))
        for n in self._fields:
            p = schema.get("properties", {}).get(n, {})
            opt = "" if n in req else " (optional)"
            desc = f" — {p['description']}" if p.get("description") else ""
            out.append(f"- `{n}`: `{ts_type(p, defs)}`{opt}{desc}")
        if self.example:
            out += ["", "```js", self.example.strip(), "```"]
        return "\n".join(out).rstrip() + "\n"


def _dict_builders(names: tuple[str, ...]) -> tuple[Callable[[list[Any]], dict[str, Any]], ...]:
    """builders[k](args) == dict(zip(names, args)) for len(args) == k, as a dict display
    (~4x cheaper than dict(zip(...)) on the per-call hot path)."""
    out = []
    for k in range(len(names) + 1):
        body = ", ".join(f"{names[i]!r}: a[{i}]" for i in range(k))
        out.append(eval(f"lambda a: {{{body}}}", {}))  # names are repr()-quoted: no injection
    return tuple(out)


def declarations(caps: Iterable[Capability]) -> str:
    """TypeScript declarations for a set of capabilities, grouped into nested namespaces."""
    tree: dict[str, Any] = {}
    for c in caps:
        node = tree
        for part in c.name.split(".")[:-1]:
            node = node.setdefault(part, {})
        node.setdefault("__caps__", []).append(c)

    def emit(name: str, node: dict[str, Any], depth: int) -> list[str]:
        ind = "  " * depth
        head = "declare namespace" if depth == 0 else "namespace"
        lines = [f"{ind}{head} {name} {{"]
        for c in node.get("__caps__", []):
            lines += c._doc_comment(ind + "  ")
            lines.append(f"{ind}  function {c.signature()};")
        for k, v in node.items():
            if k != "__caps__":
                lines += emit(k, v, depth + 1)
        return lines + [f"{ind}}}"]

    out: list[str] = []
    for k, v in tree.items():
        out += emit(k, v, 0)
    return "\n".join(out) + "\n"


def markdown(caps: Iterable[Capability]) -> str:
    return "\n".join(c.markdown() for c in caps)


def ts_type(s: dict[str, Any], defs: dict[str, Any], depth: int = 0, named: Callable[[str], str | None] | None = None) -> str:
    """A pragmatic JSON-schema -> TypeScript type rendering. `$ref`s are inlined, unless
    `named(def name)` gives a TypeScript name to use instead (generated interfaces do)."""
    if depth > 8:
        return "any"
    if "$ref" in s:
        ref = s["$ref"].split("/")[-1]
        name = named(ref) if named else None
        return name or ts_type(defs.get(ref, {}), defs, depth + 1, named)
    if "enum" in s:
        return " | ".join(json.dumps(v) for v in s["enum"])
    if "const" in s:
        return json.dumps(s["const"])
    for key in ("anyOf", "oneOf"):
        if key in s:
            return " | ".join(dict.fromkeys(ts_type(x, defs, depth + 1, named) for x in s[key]))
    t = s.get("type")
    if isinstance(t, list):
        return " | ".join(ts_type({**s, "type": x}, defs, depth + 1, named) for x in t)
    if t == "string":
        return "string"
    if t in ("number", "integer"):
        return "number"
    if t == "boolean":
        return "boolean"
    if t == "null":
        return "null"
    if t == "array":
        if "prefixItems" in s:
            return "[" + ", ".join(ts_type(x, defs, depth + 1, named) for x in s["prefixItems"]) + "]"
        inner = ts_type(s.get("items", {}), defs, depth + 1, named)
        return f"({inner})[]" if "|" in inner else f"{inner}[]"
    if t == "object" or "properties" in s:
        props = s.get("properties")
        if not props:
            ap = s.get("additionalProperties")
            return f"Record<string, {ts_type(ap, defs, depth + 1, named)}>" if isinstance(ap, dict) else "Record<string, any>"
        req = set(s.get("required", []))
        body = "; ".join(f"{k}{'' if k in req else '?'}: {ts_type(v, defs, depth + 1, named)}" for k, v in props.items())
        return "{ " + body + " }"
    return "any"


Handler = Callable[[Any], Any]
Binding = tuple[Capability, Handler]
"""A capability handed to one run, bound to the handler that serves it."""
Bindings = Sequence[Binding]
