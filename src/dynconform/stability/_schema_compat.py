"""JSON Schema compatibility, after Confluent Schema Registry's rules for JSON Schema.

A *reader* schema is compatible with a *writer* schema when every instance the writer allows
is allowed by the reader. Modes name who reads:

- ``backward``: the new schema reads data written with the old one;
- ``forward``: the old schema reads data written with the new one;
- ``full``: both; the ``-transitive`` variants check against every earlier version, not
  only the latest.

Open content models (``additionalProperties`` absent or ``true``) may carry any property, so
a property added to a reader whose writer is open is incompatible, while one removed from a
closed reader is too. A required property added with a ``default`` is compatible (the reader
fills it in), without one it is not. Numeric and string bounds, enums, types (``integer`` is
narrower than ``number``), array items and ``$ref`` targets (resolved within the schema set)
are compared structurally; every incompatibility carries a rule ID and a reason.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dynconform.contracts import json_type

MODES = (
    "backward",
    "forward",
    "full",
    "backward-transitive",
    "forward-transitive",
    "full-transitive",
)

_LOWER = (("minimum", "minimum"), ("exclusiveMinimum", "exclusive minimum"))
_UPPER = (("maximum", "maximum"), ("exclusiveMaximum", "exclusive maximum"))
_MIN_COUNTS = ("minLength", "minItems", "minProperties", "minContains")
_MAX_COUNTS = ("maxLength", "maxItems", "maxProperties", "maxContains")
_TYPES = ("null", "boolean", "integer", "number", "string", "array", "object")


@dataclass(frozen=True, slots=True)
class Incompatibility:
    """One reason a reader schema does not accept what a writer schema allows."""

    rule: str
    pointer: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"rule": self.rule, "pointer": self.pointer or "/", "message": self.message}


Resolved = tuple[Mapping[str, Any] | bool, Mapping[str, Any]]
Resolver = Callable[[str, Mapping[str, Any]], Resolved | None]


def registry_resolver(schemas: Sequence[Mapping[str, Any]]) -> Resolver:
    """A ``$ref`` resolver over a set of schemas, by ``$id`` and JSON pointer fragment."""
    by_id = {str(s["$id"]): s for s in schemas if isinstance(s.get("$id"), str)}

    def resolve(ref: str, root: Mapping[str, Any]) -> Resolved | None:
        base, _, fragment = ref.partition("#")
        top = by_id.get(base) if base else root
        if top is None:
            return None
        doc: Any = top
        for part in [p for p in fragment.split("/") if p]:
            part = part.replace("~1", "/").replace("~0", "~")
            if isinstance(doc, Mapping) and part in doc:
                doc = doc[part]
            elif isinstance(doc, list) and part.isdigit() and int(part) < len(doc):
                doc = doc[int(part)]
            else:
                return None
        return (doc, top) if isinstance(doc, Mapping | bool) else None

    return resolve


def _types(schema: Mapping[str, Any]) -> set[str] | None:
    t = schema.get("type")
    if t is None:
        if "const" in schema:
            return {_type_of(schema["const"])}
        if "enum" in schema and isinstance(schema["enum"], list):
            return {_type_of(v) for v in schema["enum"]}
        return None
    return {t} if isinstance(t, str) else set(t)


def _type_of(value: Any) -> str:
    return json_type(value) or "object"


def _accepts(reader: set[str], writer_type: str) -> bool:
    return writer_type in reader or (writer_type == "integer" and "number" in reader)


def _values(schema: Mapping[str, Any]) -> list[Any] | None:
    if "const" in schema:
        return [schema["const"]]
    enum = schema.get("enum")
    return list(enum) if isinstance(enum, list) else None


def _join(pointer: str, *parts: str | int) -> str:
    tail = "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in parts)
    return f"{pointer}/{tail}"


class _Checker:
    def __init__(
        self,
        writer_root: Mapping[str, Any],
        reader_root: Mapping[str, Any],
        writer_resolve: Resolver,
        reader_resolve: Resolver,
    ) -> None:
        self.roots = [writer_root, reader_root]
        self.resolvers = (writer_resolve, reader_resolve)
        self.seen: set[tuple[int, int]] = set()

    def _deref(self, schema: Any, side: int, pointer: str) -> tuple[Any, Incompatibility | None]:
        hops = 0
        while isinstance(schema, Mapping) and isinstance(schema.get("$ref"), str) and hops < 32:
            found = self.resolvers[side](schema["$ref"], self.roots[side])
            if found is None:
                who = "writer" if side == 0 else "reader"
                msg = f"{who} $ref {schema['$ref']} does not resolve in its schema set"
                return schema, Incompatibility("ref-unresolved", pointer, msg)
            target, self.roots[side] = found
            extra = {k: v for k, v in schema.items() if k != "$ref"}
            schema = {**target, **extra} if extra and isinstance(target, Mapping) else target
            hops += 1
        return schema, None

    def check(self, writer: Any, reader: Any, pointer: str = "") -> Iterator[Incompatibility]:
        saved = list(self.roots)
        try:
            yield from self._check(writer, reader, pointer)
        finally:
            self.roots = saved

    def _check(self, writer: Any, reader: Any, pointer: str) -> Iterator[Incompatibility]:
        writer, err = self._deref(writer, 0, pointer)
        if err:
            yield err
            return
        reader, err = self._deref(reader, 1, pointer)
        if err:
            yield err
            return
        if reader is True or reader == {} or writer is False:
            return
        if reader is False:
            yield Incompatibility("schema-closed", pointer, "the reader accepts nothing here")
            return
        if writer is True:
            writer = {}
        key = (id(writer), id(reader))
        if key in self.seen:
            return
        self.seen.add(key)
        if writer == reader and "$ref" not in repr(writer):
            return
        yield from self._combinators(writer, reader, pointer)
        yield from self._type(writer, reader, pointer)
        yield from self._enum(writer, reader, pointer)
        yield from self._bounds(writer, reader, pointer)
        yield from self._strings(writer, reader, pointer)
        yield from self._object(writer, reader, pointer)
        yield from self._array(writer, reader, pointer)
        yield from self._conditional(writer, reader, pointer)

    def _branch_ok(self, writer: Any, reader: Any, pointer: str) -> list[Incompatibility]:
        saved = set(self.seen)
        found = list(self.check(writer, reader, pointer))
        self.seen = saved
        return found

    def _combinators(
        self, writer: Mapping[str, Any], reader: Mapping[str, Any], pointer: str
    ) -> Iterator[Incompatibility]:
        for word in ("anyOf", "oneOf"):
            r_branches = reader.get(word)
            w_branches = writer.get(word) or writer.get("oneOf" if word == "anyOf" else "anyOf")
            if not isinstance(r_branches, list):
                continue
            writer_cases = w_branches if isinstance(w_branches, list) else [writer]
            for i, w in enumerate(writer_cases):
                if isinstance(w, Mapping) and w is not writer:
                    w = {**{k: v for k, v in writer.items() if k not in ("anyOf", "oneOf")}, **w}
                if not any(
                    not self._branch_ok(w, r, _join(pointer, word, j))
                    for j, r in enumerate(r_branches)
                ):
                    where = f"writer branch {i}" if w_branches else "the writer schema"
                    msg = f"{where} matches no {word} branch of the reader"
                    yield Incompatibility("combined-branch-removed", _join(pointer, word), msg)
        r_all = reader.get("allOf")
        if isinstance(r_all, list):
            raw = writer.get("allOf")
            w_all: list[Any] = raw if isinstance(raw, list) else []
            for j, r in enumerate(r_all):
                if j < len(w_all):
                    yield from self.check(w_all[j], r, _join(pointer, "allOf", j))
                elif r not in w_all:
                    base = {k: v for k, v in writer.items() if k != "allOf"}
                    yield from self.check(base, r, _join(pointer, "allOf", j))
        if "not" in reader and reader.get("not") != writer.get("not"):
            msg = "the reader's 'not' constraint changed or was added"
            yield Incompatibility("not-changed", _join(pointer, "not"), msg)

    def _type(
        self, writer: Mapping[str, Any], reader: Mapping[str, Any], pointer: str
    ) -> Iterator[Incompatibility]:
        r_types = _types(reader)
        if r_types is None or "type" not in reader:
            return
        w_types = _types(writer)
        if w_types is None:
            msg = f"type restricted to {sorted(r_types)}; the writer allows any type"
            yield Incompatibility("type-narrowed", pointer, msg)
            return
        lost = sorted(t for t in w_types if not _accepts(r_types, t))
        if lost:
            msg = f"type narrowed from {sorted(w_types)} to {sorted(r_types)}: {lost} rejected"
            yield Incompatibility("type-narrowed", pointer, msg)

    def _enum(
        self, writer: Mapping[str, Any], reader: Mapping[str, Any], pointer: str
    ) -> Iterator[Incompatibility]:
        r_values = _values(reader)
        if r_values is None:
            return
        w_values = _values(writer)
        if w_values is None:
            msg = f"enum {r_values!r} added; the writer allows other values"
            yield Incompatibility("enum-added", pointer, msg)
            return
        missing = [v for v in w_values if v not in r_values]
        if missing:
            msg = f"enum values removed: {missing!r}"
            yield Incompatibility("enum-narrowed", pointer, msg)

    def _bounds(
        self, writer: Mapping[str, Any], reader: Mapping[str, Any], pointer: str
    ) -> Iterator[Incompatibility]:
        w_lo, r_lo = _bound(writer, _LOWER, -1), _bound(reader, _LOWER, -1)
        if r_lo is not None and (w_lo is None or _tighter(r_lo, w_lo, -1)):
            was = "unbounded" if w_lo is None else _show(w_lo)
            msg = f"lower bound raised from {was} to {_show(r_lo)}"
            yield Incompatibility("minimum-increased", pointer, msg)
        w_hi, r_hi = _bound(writer, _UPPER, 1), _bound(reader, _UPPER, 1)
        if r_hi is not None and (w_hi is None or _tighter(r_hi, w_hi, 1)):
            was = "unbounded" if w_hi is None else _show(w_hi)
            msg = f"upper bound lowered from {was} to {_show(r_hi)}"
            yield Incompatibility("maximum-decreased", pointer, msg)
        for word in _MIN_COUNTS:
            r, w = reader.get(word), writer.get(word, 0)
            if isinstance(r, int) and r > w:
                yield Incompatibility(f"{_kebab(word)}-increased", pointer, f"{word} {w} -> {r}")
        for word in _MAX_COUNTS:
            r, w = reader.get(word), writer.get(word)
            if isinstance(r, int) and (w is None or r < w):
                was = "unbounded" if w is None else w
                yield Incompatibility(f"{_kebab(word)}-decreased", pointer, f"{word} {was} -> {r}")
        r_mult, w_mult = reader.get("multipleOf"), writer.get("multipleOf")
        if isinstance(r_mult, int | float) and not (
            isinstance(w_mult, int | float) and _divides(r_mult, w_mult)
        ):
            msg = f"multipleOf {r_mult} does not divide the writer's {w_mult or 'any number'}"
            yield Incompatibility("multiple-of-changed", pointer, msg)

    def _strings(
        self, writer: Mapping[str, Any], reader: Mapping[str, Any], pointer: str
    ) -> Iterator[Incompatibility]:
        for word, rule in (("pattern", "pattern-changed"), ("format", "format-changed")):
            r = reader.get(word)
            if r is not None and r != writer.get(word):
                was = writer.get(word)
                msg = f"{word} {'added' if was is None else f'changed from {was!r}'}: {r!r}"
                yield Incompatibility(rule, pointer, msg)

    def _object(
        self, writer: Mapping[str, Any], reader: Mapping[str, Any], pointer: str
    ) -> Iterator[Incompatibility]:
        w_props: Mapping[str, Any] = writer.get("properties") or {}
        r_props: Mapping[str, Any] = reader.get("properties") or {}
        w_extra = writer.get("additionalProperties", True)
        r_extra = reader.get("additionalProperties", True)
        for name, w_sub in w_props.items():
            where = _join(pointer, "properties", name)
            if name in r_props:
                yield from self.check(w_sub, r_props[name], where)
            elif r_extra is False:
                msg = f"property {name!r} removed from a closed content model"
                yield Incompatibility("property-removed-from-closed-content-model", where, msg)
            elif r_extra is not True:
                yield from self.check(w_sub, r_extra, _join(pointer, "additionalProperties"))
        for name, r_sub in r_props.items():
            if name in w_props:
                continue
            where = _join(pointer, "properties", name)
            if w_extra is False:
                continue
            if w_extra is True or w_extra == {}:
                if r_sub not in (True, {}):
                    msg = f"property {name!r} added to an open content model"
                    yield Incompatibility("property-added-to-open-content-model", where, msg)
            else:
                yield from self.check(w_extra, r_sub, where)
        if r_extra is not True and w_extra is not False:
            where = _join(pointer, "additionalProperties")
            if r_extra is False:
                msg = "additionalProperties closed: the writer allows extra properties"
                yield Incompatibility("content-model-closed", where, msg)
            elif w_extra is True:
                msg = "additionalProperties restricted: the writer allows any extra property"
                yield Incompatibility("content-model-narrowed", where, msg)
            else:
                yield from self.check(w_extra, r_extra, where)
        w_req = set(writer.get("required") or ())
        for name in reader.get("required") or ():
            if name in w_req:
                continue
            sub = r_props.get(name)
            if isinstance(sub, Mapping) and "default" in sub:
                continue
            msg = f"property {name!r} is now required and has no default"
            yield Incompatibility("required-property-added", _join(pointer, "required"), msg)

    def _array(
        self, writer: Mapping[str, Any], reader: Mapping[str, Any], pointer: str
    ) -> Iterator[Incompatibility]:
        w_prefix = writer.get("prefixItems") or []
        r_prefix = reader.get("prefixItems") or []
        w_items = writer.get("items", True)
        r_items = reader.get("items", True)
        for i in range(max(len(w_prefix), len(r_prefix))):
            w = w_prefix[i] if i < len(w_prefix) else w_items
            r = r_prefix[i] if i < len(r_prefix) else r_items
            yield from self.check(w, r, _join(pointer, "prefixItems", i))
        if "items" in reader or "items" in writer:
            yield from self.check(w_items, r_items, _join(pointer, "items"))
        if reader.get("uniqueItems") and not writer.get("uniqueItems"):
            yield Incompatibility("unique-items-added", pointer, "uniqueItems added")

    def _conditional(
        self, writer: Mapping[str, Any], reader: Mapping[str, Any], pointer: str
    ) -> Iterator[Incompatibility]:
        if "if" not in reader:
            return
        if writer.get("if") != reader.get("if"):
            msg = "the reader's if/then/else condition changed or was added"
            yield Incompatibility("conditional-changed", _join(pointer, "if"), msg)
            return
        for word in ("then", "else"):
            if word in reader:
                yield from self.check(writer.get(word, True), reader[word], _join(pointer, word))


def _kebab(word: str) -> str:
    return "".join(f"-{c.lower()}" if c.isupper() else c for c in word)


def _bound(
    schema: Mapping[str, Any], words: tuple[tuple[str, str], ...], sign: int
) -> tuple[float, bool] | None:
    """The tightest bound as (value, exclusive)."""
    best: tuple[float, bool] | None = None
    for word, _ in words:
        value = schema.get(word)
        if isinstance(value, int | float) and not isinstance(value, bool):
            cand = (float(value), word.startswith("exclusive"))
            if best is None or _tighter(cand, best, sign):
                best = cand
    return best


def _tighter(a: tuple[float, bool], b: tuple[float, bool], sign: int) -> bool:
    """Whether bound ``a`` excludes something ``b`` allows (sign -1 lower, +1 upper)."""
    if a[0] != b[0]:
        return a[0] > b[0] if sign < 0 else a[0] < b[0]
    return a[1] and not b[1]


def _show(bound: tuple[float, bool]) -> str:
    value = int(bound[0]) if bound[0].is_integer() else bound[0]
    return f"{value} (exclusive)" if bound[1] else str(value)


def _divides(reader: float, writer: float) -> bool:
    ratio = writer / reader
    return math.isclose(ratio, round(ratio)) and round(ratio) != 0


def incompatibilities(
    writer: Mapping[str, Any] | bool,
    reader: Mapping[str, Any] | bool,
    *,
    writer_set: Sequence[Mapping[str, Any]] = (),
    reader_set: Sequence[Mapping[str, Any]] = (),
) -> list[Incompatibility]:
    """Why ``reader`` does not accept everything ``writer`` allows (empty: compatible).

    ``writer_set`` and ``reader_set`` are the schemas their absolute ``$ref``s resolve in.
    """
    w_root = writer if isinstance(writer, Mapping) else {}
    r_root = reader if isinstance(reader, Mapping) else {}
    checker = _Checker(
        w_root,
        r_root,
        registry_resolver([w_root, *writer_set]),
        registry_resolver([r_root, *reader_set]),
    )
    out: list[Incompatibility] = []
    for item in checker.check(writer, reader):
        if item not in out:
            out.append(item)
    return out


def pairs_for_mode(mode: str, count: int) -> list[tuple[int, int, str]]:
    """The (writer, reader, direction) version index pairs a mode checks for the newest of
    ``count`` versions (oldest first)."""
    if mode not in MODES:
        raise ValueError(f"unknown compatibility mode {mode!r} (expected one of {MODES})")
    new = count - 1
    olds = list(range(new)) if mode.endswith("-transitive") else [new - 1]
    base = mode.removesuffix("-transitive")
    out: list[tuple[int, int, str]] = []
    for old in olds:
        if base in ("backward", "full"):
            out.append((old, new, "backward"))
        if base in ("forward", "full"):
            out.append((new, old, "forward"))
    return out


__all__ = ["MODES", "Incompatibility", "incompatibilities", "pairs_for_mode", "registry_resolver"]
