"""A JSON schema (from a pydantic model, a TypedDict or a dict) -> a JSON skeleton: literal text and typed leaves.

    spec = JsonSpec.from_schema(Person)
    spec.parts   # ['{"name": "', Leaf(name), '", "age": ', Leaf(age), ', "vip": ', Leaf(vip), '}']
    spec.check({"name": "Ada", "age": 36, "vip": True})   # (Person(...), [])

The literal text (braces, keys, quotes, commas) is anchored in the template; each leaf is a slot. A leaf's
size in tokens comes from the field's metadata, in this order: `json_schema_extra={"max_tokens": n}` or
`{"max_length": n}`, pydantic's `max_length` (characters, at least one a token), the digits its bounds
allow (integers), then a default. What a leaf may hold comes from its type:

| JSON schema                               | leaf                                                     |
|-------------------------------------------|----------------------------------------------------------|
| string                                    | text inside anchored quotes, no quote/backslash/control  |
| integer / number                          | digits (a leading minus, one decimal point for number)   |
| boolean, enum, Literal, small int range   | one of a fixed list of JSON texts ("choice")             |
| const, null                               | anchored literal text, no slot                           |
| object (nested model)                     | its own skeleton, recursively                            |
| array                                     | a fixed number of items: maxItems, minItems, or 3        |
| X or null (Optional[X])                   | X: the model always fills an optional field              |

A leaf shorter than its slot ends with filler tokens (the model's pad token) that the reader drops.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic.v1 import BaseModel as V1BaseModel
from pydantic.v1 import ValidationError as V1ValidationError

DEFAULT_TOKENS = {"string": 16, "integer": 6, "number": 8}  # a name or phrase; up to 999999; e.g. -12.3456
DEFAULT_ITEMS = 3  # items of an array whose schema gives no count
MAX_CHOICE_RANGE = 256  # a bounded integer with at most this many values is filled as a choice
MAX_DEPTH = 32  # nesting deeper than this is taken for a recursive schema
INTEGER_RE = re.compile(r"-?\d+")
NUMBER_RE = re.compile(r"-?(\d+\.?\d*|\.\d+)")

Path = tuple[str | int, ...]


@dataclass
class Leaf:
    """One value of the skeleton that the model fills."""

    path: Path  # keys and item indexes from the root
    kind: str  # "string", "integer", "number" or "choice"
    length: int  # tokens of the slot (a choice's length is set from its options' tokens)
    options: tuple[tuple[str, Any], ...] = field(default=(), repr=False)  # choice: (JSON text in the slot, value)
    quoted: bool = False  # the skeleton holds the quotes around this leaf
    min_length: int | None = None  # string bounds, in characters
    max_length: int | None = None
    pattern: str | None = None
    minimum: float | None = None  # inclusive numeric bounds
    maximum: float | None = None

    @property
    def where(self) -> str:
        return ".".join(map(str, self.path)) or "(root)"

    def from_text(self, text: str) -> Any:
        """The slot's text (fillers dropped) -> the value; ValueError when it does not read as one."""
        if self.kind == "choice":
            for option, value in self.options:
                if option == text:
                    return value
            raise ValueError(f"{text!r} is not one of {', '.join(o for o, _ in self.options)}")
        if self.kind == "integer":
            if not INTEGER_RE.fullmatch(text):
                raise ValueError(f"{text!r} is not an integer")
            value: Any = int(text)
        elif self.kind == "number":
            if not NUMBER_RE.fullmatch(text):
                raise ValueError(f"{text!r} is not a number")
            value = float(text)
        else:
            value = text
        self.check_value(value)
        return value

    def check_value(self, value: Any) -> None:
        """ValueError if `value` does not fit this leaf's type and bounds."""
        if self.kind == "choice":
            if not any(value == v and type(value) is type(v) for _, v in self.options):
                raise ValueError(f"{value!r} is not one of {', '.join(o for o, _ in self.options)}")
            return
        if self.kind == "string":
            if not isinstance(value, str):
                raise ValueError(f"expected a string, got {value!r}")
            if self.min_length is not None and len(value) < self.min_length:
                raise ValueError(f"{value!r} is shorter than {self.min_length} characters")
            if self.max_length is not None and len(value) > self.max_length:
                raise ValueError(f"{value!r} is longer than {self.max_length} characters")
            if self.pattern is not None and not re.search(self.pattern, value):
                raise ValueError(f"{value!r} does not match {self.pattern!r}")
            return
        numeric = (int,) if self.kind == "integer" else (int, float)
        if isinstance(value, bool) or not isinstance(value, numeric):
            raise ValueError(f"expected {'an integer' if self.kind == 'integer' else 'a number'}, got {value!r}")
        if self.minimum is not None and value < self.minimum:
            raise ValueError(f"{value} is less than {self.minimum:g}")
        if self.maximum is not None and value > self.maximum:
            raise ValueError(f"{value} is greater than {self.maximum:g}")


@dataclass
class FieldError:
    path: Path
    message: str

    def __str__(self) -> str:
        return f"{'.'.join(map(str, self.path)) or '(root)'}: {self.message}"


@dataclass
class JsonSpec:
    schema: Any  # what the user passed
    json_schema: dict
    parts: list[str | Leaf] = field(default_factory=list)

    @property
    def leaves(self) -> list[Leaf]:
        return [p for p in self.parts if isinstance(p, Leaf)]

    @property
    def title(self) -> str:
        return str(self.json_schema.get("title") or getattr(self.schema, "__name__", "output"))

    def __repr__(self) -> str:  # stable: it ends up in LangChain's invocation params and cache keys
        return f"JsonSpec({self.title!r}, {json.dumps(self.json_schema, sort_keys=True)})"

    @classmethod
    def from_schema(cls, schema: Any) -> JsonSpec:
        spec = cls(schema, _json_schema(schema))
        defs = {**spec.json_schema.get("definitions", {}), **spec.json_schema.get("$defs", {})}  # pydantic 1, 2
        _build(spec.json_schema, (), spec.parts, defs, 0)
        return spec

    def assemble(self, values: dict[Path, Any]) -> Any:
        """Leaf values by path -> the nested object; constants and nulls come from the skeleton text."""
        return json.loads(self.render({p: json.dumps(v, ensure_ascii=False) for p, v in values.items()}))

    def render(self, texts: dict[Path, str]) -> str:
        """The skeleton with each leaf's JSON text put in (a quoted leaf's quotes are in the skeleton)."""
        out = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
            else:
                text = texts[part.path]
                out.append(text[1:-1] if part.quoted and text.startswith('"') else text)
        return "".join(out)

    def check(self, obj: Any) -> tuple[Any, list[FieldError]]:
        """`obj` validated against the schema -> (the result: model instance or dict, errors by path)."""
        if isinstance(self.schema, type) and issubclass(self.schema, BaseModel):
            validate = self.schema.model_validate
        elif isinstance(self.schema, type) and issubclass(self.schema, V1BaseModel):
            validate = self.schema.parse_obj
        elif isinstance(self.schema, dict):
            return obj, self._check_leaves(obj)
        else:
            validate = TypeAdapter(self.schema).validate_python
        try:
            return validate(obj), []
        except (ValidationError, V1ValidationError) as e:
            return None, [FieldError(tuple(err["loc"]), err["msg"]) for err in e.errors()]

    def _check_leaves(self, obj: Any) -> list[FieldError]:
        errors = []
        for leaf in self.leaves:
            value = obj
            try:
                for key in leaf.path:
                    value = value[key]
                leaf.check_value(value)
            except (KeyError, IndexError, TypeError):
                errors.append(FieldError(leaf.path, "missing"))
            except ValueError as e:
                errors.append(FieldError(leaf.path, str(e)))
        return errors

    def leaves_at(self, path: Path) -> list[Leaf]:
        """The leaves an error at `path` blames: the leaf there, or every leaf below it (all for the root)."""
        return [leaf for leaf in self.leaves if leaf.path[: len(path)] == tuple(path)]


# ---- building -------------------------------------------------------------------------------------


def _json_schema(schema: Any) -> dict:
    if isinstance(schema, dict):
        if "parameters" in schema and "name" in schema:  # an OpenAI-style function description
            return {"title": schema["name"], **schema["parameters"]}
        return schema
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        return schema.model_json_schema()
    if isinstance(schema, type) and issubclass(schema, V1BaseModel):  # pydantic.v1 models, as older code has
        return schema.schema()
    try:
        return TypeAdapter(schema).json_schema()  # TypedDict, dataclass, ...
    except Exception as e:  # pydantic raises several types here; one message says what to pass
        raise ValueError(f"cannot read a JSON schema from {schema!r}: pass a pydantic model, a TypedDict "
                         f"or a JSON schema dict ({e})") from None


def _resolve(node: dict, defs: dict) -> dict:
    while True:
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            if name not in defs:
                raise ValueError(f"the schema refers to {node['$ref']!r}, which it does not define")
            node = {**defs[name], **{k: v for k, v in node.items() if k != "$ref"}}
        elif "allOf" in node and len(node["allOf"]) == 1:
            node = {**node["allOf"][0], **{k: v for k, v in node.items() if k != "allOf"}}
        elif "anyOf" in node or "oneOf" in node:
            options = [o for o in node.get("anyOf", node.get("oneOf")) if o.get("type") != "null"]
            if len(options) != 1:
                raise ValueError("a union of several types is not supported; only X or None (Optional[X])")
            rest = {k: v for k, v in node.items() if k not in ("anyOf", "oneOf", "default")}
            node = {**options[0], **rest}
        else:
            return node


def _extra_length(node: dict) -> int | None:
    for key in ("max_tokens", "max_length"):  # json_schema_extra keys: the slot's size in tokens
        if isinstance(node.get(key), int) and node[key] > 0:
            return node[key]
    return None


def _bounds(node: dict) -> tuple[float | None, float | None]:
    lo, hi = node.get("minimum"), node.get("maximum")
    if "exclusiveMinimum" in node:
        ex = node["exclusiveMinimum"]
        lo = ex + 1 if node.get("type") == "integer" and float(ex).is_integer() else (lo if lo is not None else ex)
    if "exclusiveMaximum" in node:
        ex = node["exclusiveMaximum"]
        hi = ex - 1 if node.get("type") == "integer" and float(ex).is_integer() else (hi if hi is not None else ex)
    return lo, hi


def _build(node: dict, path: Path, parts: list, defs: dict, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ValueError(f"the schema nests deeper than {MAX_DEPTH} levels at {'.'.join(map(str, path))}; "
                         "recursive schemas are not supported")
    node = _resolve(node, defs)
    kind = node.get("type")
    if isinstance(kind, list):  # ["integer", "null"] -> integer
        kinds = [k for k in kind if k != "null"]
        if len(kinds) != 1:
            raise ValueError(f"a field of several types ({kind}) is not supported")
        kind = kinds[0]
    if "const" in node:
        parts.append(json.dumps(node["const"], ensure_ascii=False))
    elif "enum" in node:
        _choice(path, [(json.dumps(v, ensure_ascii=False), v) for v in node["enum"]], parts)
    elif kind == "object":
        props = node.get("properties")
        if not props:
            raise ValueError(f"{'.'.join(map(str, path)) or 'the schema'} is an object without properties; "
                             "free-form dicts have no skeleton to anchor")
        parts.append("{")
        for i, (key, sub) in enumerate(props.items()):
            parts.append(("" if i == 0 else ", ") + json.dumps(key, ensure_ascii=False) + ": ")
            _build(sub, (*path, key), parts, defs, depth + 1)
        parts.append("}")
    elif kind == "array":
        if "items" not in node or "prefixItems" in node:
            raise ValueError("arrays need one item schema (list[X]); tuples are not supported")
        n = node.get("maxItems", node.get("minItems", DEFAULT_ITEMS))
        n = max(n, node.get("minItems", 0))
        parts.append("[")
        for i in range(n):
            if i:
                parts.append(", ")
            _build(node["items"], (*path, i), parts, defs, depth + 1)
        parts.append("]")
    elif kind == "boolean":
        _choice(path, [("true", True), ("false", False)], parts)
    elif kind == "null":
        parts.append("null")
    elif kind in ("integer", "number"):
        lo, hi = _bounds(node)
        if kind == "integer" and lo is not None and hi is not None and 0 <= hi - lo < MAX_CHOICE_RANGE:
            _choice(path, [(str(v), v) for v in range(int(lo), int(hi) + 1)], parts)
            return
        length = _extra_length(node)
        if length is None and kind == "integer" and lo is not None and hi is not None:
            length = max(len(str(int(lo))), len(str(int(hi))))
        length = max(length or DEFAULT_TOKENS[kind], len(str(int(lo))) if lo is not None else 1)  # room for the minimum
        parts.append(Leaf(path, kind, length, minimum=lo, maximum=hi))
    elif kind == "string":
        min_length = node.get("minLength")
        length = max(_extra_length(node) or node.get("maxLength") or DEFAULT_TOKENS["string"], min_length or 1)
        parts += ['"', Leaf(path, "string", length, min_length=min_length, max_length=node.get("maxLength"),
                            pattern=node.get("pattern"), quoted=True), '"']
    else:
        raise ValueError(f"{'.'.join(map(str, path)) or 'the schema'} has no type this skeleton can fill ({kind!r})")


def _choice(path: Path, options: list[tuple[str, Any]], parts: list) -> None:
    if not options:
        raise ValueError(f"{'.'.join(map(str, path))} allows no value at all")
    if all(isinstance(v, str) for _, v in options):  # quotes anchored, the slot holds the inside
        parts += ['"', Leaf(path, "choice", 1, options=tuple((t[1:-1], v) for t, v in options), quoted=True), '"']
    else:
        parts.append(Leaf(path, "choice", 1, options=tuple(options)))

