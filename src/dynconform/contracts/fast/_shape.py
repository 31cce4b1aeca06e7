"""Flatten a JSON Schema (with its ``$ref``s and ``allOf``) into one :class:`Shape`.

A shape is the conjunction of every assertion that applies to one value. The compiler turns
shapes into msgspec types; whatever a shape cannot express exactly raises
:class:`Unsupported`, and the contract then stays on the reference validator.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from referencing._core import Resolver

#: Keywords that only annotate (draft 2020-12 does not assert them by default).
ANNOTATIONS = frozenset(
    {
        "$schema",
        "$comment",
        "$defs",
        "title",
        "description",
        "examples",
        "default",
        "deprecated",
        "readOnly",
        "writeOnly",
        "contentEncoding",
        "contentMediaType",
    }
)

#: JSON types; ``number`` here means the numbers that are not integers.
JSON_TYPES = ("null", "boolean", "integer", "number", "string", "array", "object")

MAX_DEPTH = 64


class Unsupported(Exception):
    """A schema construct that the compiler cannot turn into an exact check."""


@dataclass(frozen=True, slots=True)
class Sub:
    """A subschema and the resolver that resolves its references."""

    schema: Any
    resolver: Resolver[Any]


@dataclass(slots=True)
class Cond:
    """One ``if``/``then``/``else``."""

    if_: Sub
    then: Sub | None
    else_: Sub | None


@dataclass(slots=True)
class Shape:
    """Every assertion on one value, merged."""

    never: bool = False
    types: set[str] | None = None
    enums: list[list[Any]] = field(default_factory=list)
    lower: list[tuple[int | float, bool]] = field(default_factory=list)
    upper: list[tuple[int | float, bool]] = field(default_factory=list)
    min_length: int = 0
    max_length: int | None = None
    patterns: list[str] = field(default_factory=list)
    items: list[Sub] = field(default_factory=list)
    prefix: list[Sub] | None = None
    min_items: int = 0
    max_items: int | None = None
    unique: bool = False
    properties: dict[str, list[Sub]] = field(default_factory=dict)
    required: set[str] = field(default_factory=set)
    additional: list[tuple[Sub, frozenset[str]]] = field(default_factory=list)
    property_names: list[Sub] = field(default_factory=list)
    min_props: int = 0
    max_props: int | None = None
    conds: list[Cond] = field(default_factory=list)

    def copy(self) -> Shape:
        return _copy(self)


def _copy(shape: Shape) -> Shape:
    return Shape(
        never=shape.never,
        types=None if shape.types is None else set(shape.types),
        enums=[list(e) for e in shape.enums],
        lower=list(shape.lower),
        upper=list(shape.upper),
        min_length=shape.min_length,
        max_length=shape.max_length,
        patterns=list(shape.patterns),
        items=list(shape.items),
        prefix=None if shape.prefix is None else list(shape.prefix),
        min_items=shape.min_items,
        max_items=shape.max_items,
        unique=shape.unique,
        properties={k: list(v) for k, v in shape.properties.items()},
        required=set(shape.required),
        additional=list(shape.additional),
        property_names=list(shape.property_names),
        min_props=shape.min_props,
        max_props=shape.max_props,
        conds=list(shape.conds),
    )


def _min(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else min(a, b)


def restrict_types(shape: Shape, types: set[str]) -> None:
    """Intersect the shape's possible types with ``types``."""
    shape.types = set(types) if shape.types is None else shape.types & types


def _types_of(value: Any) -> set[str]:
    if isinstance(value, str):
        raw = {value}
    elif isinstance(value, list) and all(isinstance(t, str) for t in value):
        raw = set(value)
    else:
        raise Unsupported(f"type {value!r}")
    unknown = raw - set(JSON_TYPES)
    if unknown:
        raise Unsupported(f"type {sorted(unknown)}")
    if "number" in raw:
        raw.add("integer")
    return raw


def collect(sub: Sub, shape: Shape, depth: int = 0) -> None:
    """Merge every assertion of ``sub`` into ``shape``."""
    if depth > MAX_DEPTH:
        raise Unsupported("schema nesting too deep (recursive $ref?)")
    schema, resolver = sub.schema, sub.resolver
    if schema is True:
        return
    if schema is False:
        shape.never = True
        return
    if not isinstance(schema, dict):
        raise Unsupported(f"schema {schema!r}")
    for key, value in schema.items():
        if key in ANNOTATIONS or key.startswith("x-") or key in ("then", "else"):
            continue
        if key == "$id":
            continue  # resource roots only: lookups already switch the resolver
        if key == "$ref":
            resolved = resolver.lookup(value)
            collect(Sub(resolved.contents, resolved.resolver), shape, depth + 1)
        elif key == "allOf":
            for member in value:
                collect(Sub(member, resolver), shape, depth + 1)
        elif key == "if":
            then = Sub(schema["then"], resolver) if "then" in schema else None
            else_ = Sub(schema["else"], resolver) if "else" in schema else None
            if then is not None or else_ is not None:
                shape.conds.append(Cond(Sub(value, resolver), then, else_))
        elif key == "type":
            restrict_types(shape, _types_of(value))
        elif key == "enum":
            shape.enums.append(list(value))
        elif key == "const":
            shape.enums.append([value])
        elif key == "minimum":
            shape.lower.append((value, False))
        elif key == "exclusiveMinimum":
            shape.lower.append((value, True))
        elif key == "maximum":
            shape.upper.append((value, False))
        elif key == "exclusiveMaximum":
            shape.upper.append((value, True))
        elif key == "minLength":
            shape.min_length = max(shape.min_length, value)
        elif key == "maxLength":
            shape.max_length = _min(shape.max_length, value)
        elif key == "pattern":
            shape.patterns.append(value)
        elif key == "items":
            shape.items.append(Sub(value, resolver))
        elif key == "prefixItems":
            if shape.prefix is not None:
                raise Unsupported("prefixItems in two merged schemas")
            shape.prefix = [Sub(v, resolver) for v in value]
        elif key == "minItems":
            shape.min_items = max(shape.min_items, value)
        elif key == "maxItems":
            shape.max_items = _min(shape.max_items, value)
        elif key == "uniqueItems":
            shape.unique = shape.unique or bool(value)
        elif key == "properties":
            for name, subschema in value.items():
                shape.properties.setdefault(name, []).append(Sub(subschema, resolver))
        elif key == "required":
            shape.required.update(value)
        elif key == "additionalProperties":
            if "patternProperties" in schema:
                raise Unsupported("additionalProperties beside patternProperties")
            siblings = frozenset(schema.get("properties", {}))
            shape.additional.append((Sub(value, resolver), siblings))
        elif key == "propertyNames":
            shape.property_names.append(Sub(value, resolver))
        elif key == "minProperties":
            shape.min_props = max(shape.min_props, value)
        elif key == "maxProperties":
            shape.max_props = _min(shape.max_props, value)
        else:
            raise Unsupported(f"keyword {key!r}")


def flatten(subs: list[Sub]) -> Shape:
    """The shape of the conjunction of ``subs``."""
    shape = Shape()
    for sub in subs:
        collect(sub, shape)
    return shape


def json_equal(a: Any, b: Any) -> bool:
    """JSON equality as JSON Schema defines it (booleans are not numbers)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    return type(a) is type(b) and bool(a == b)


def enum_values(shape: Shape) -> list[Any] | None:
    """The values every ``enum``/``const`` of the shape allows, or ``None`` when unrestricted."""
    if not shape.enums:
        return None
    allowed = list(shape.enums[0])
    for other in shape.enums[1:]:
        allowed = [v for v in allowed if any(json_equal(v, o) for o in other)]
    return allowed
