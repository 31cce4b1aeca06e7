"""Compile JSON Schemas into msgspec types that decode and validate in one pass.

A compiled type never accepts a value that its schema rejects. It may reject a few values the
schema accepts (``1.0`` for an integer, a map with non-string keys, a batch of active
sequences that carries a single event's keys); the fast path hands those to the reference
validator. A construct the compiler cannot express that way raises :class:`Unsupported`, and
the contract stays on the reference validator.

``mode="msgpack"`` compiles for values decoded from MessagePack: integers there fit in
``[-2**63, 2**64 - 1]``, and the binary view ``{"__msgpack__": ...}`` is the ``bin`` value
itself, whose content the contract's dispatch validates. ``mode="python"`` compiles for JSON
values (``json.loads``, the JSON view of captures), where integers are unbounded.
"""

from __future__ import annotations

import functools
import itertools
import keyword
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union

import msgspec
from msgspec import UNSET, Meta, UnsetType

from dynconform.contracts._validate import json_type
from dynconform.contracts.fast import _checks
from dynconform.contracts.fast._checks import Check, PatternCheck, Presence
from dynconform.contracts.fast._shape import (
    JSON_TYPES,
    Cond,
    Shape,
    Sub,
    Unsupported,
    collect,
    enum_values,
    flatten,
    restrict_types,
)

Mode = Literal["msgpack", "python"]

INT64_MIN, INT64_MAX, UINT64_MAX = -(2**63), 2**63 - 1, 2**64 - 1
FLOAT_EXACT = 2**53
BINARY_VIEW_KEY = "__msgpack__"
_NUMERIC = frozenset({"integer", "number"})
_META: Callable[..., Any] = Meta


class Empty(Exception):
    """No value satisfies the shape (a contradiction, e.g. one branch of a type split)."""


@dataclass(frozen=True, slots=True)
class Residual:
    """An ``if``/``then``/``else`` that runs after decoding: the keys its ``if`` requires and
    the keys its ``then`` and ``else`` constrain."""

    requires: frozenset[str]
    then_touches: frozenset[str]
    else_touches: frozenset[str]


@dataclass(frozen=True, slots=True)
class Compiled:
    """The msgspec type of a contract and where its binary views are."""

    type: Any
    #: JSON pointers of ``bin`` values that stand for ``{"__msgpack__": ...}``.
    binary_pointers: frozenset[str]


def _kind(value: Any) -> str:
    kind = json_type(value)
    if kind is None:
        raise Unsupported(f"enum value {value!r}")
    return kind


def _possible_types(shape: Shape) -> list[str]:
    types = set(JSON_TYPES) if shape.types is None else set(shape.types)
    values = enum_values(shape)
    if values is not None:
        types &= {_kind(v) for v in values}
    return [t for t in JSON_TYPES if t in types]


def _is_default(shape: Shape, *allowed: str) -> bool:
    """Whether the shape asserts nothing beyond the fields named in ``allowed``."""
    blank = Shape()
    return all(
        name in allowed or getattr(shape, name) == getattr(blank, name) for name in Shape.__slots__
    )


def _is_open(shape: Shape) -> bool:
    return all(_is_default(flatten([sub])) for sub, _ in shape.additional)


def _type_test(cond: Cond) -> set[str] | None:
    """The types an ``if: {type: ...}`` tests, or ``None`` for another kind of ``if``."""
    shape = flatten([cond.if_])
    if shape.types is None or not _is_default(shape, "types"):
        return None
    return shape.types


def _presence_test(cond: Cond) -> set[str] | None:
    """The keys an ``if: {required: [...]}`` tests, or ``None`` for another kind of ``if``."""
    shape = flatten([cond.if_])
    if not shape.required or not _is_default(shape, "required"):
        return None
    return shape.required


def _discriminator(cond: Cond) -> tuple[str, str] | None:
    """``(key, value)`` for ``if: {properties: {key: {const: value}}, required: [key]}``."""
    shape = flatten([cond.if_])
    if not _is_default(shape, "properties", "required") or len(shape.properties) != 1:
        return None
    ((key, subs),) = shape.properties.items()
    inner = flatten(subs)
    values = enum_values(inner)
    if shape.required != {key} or not _is_default(inner, "enums") or values is None:
        return None
    if len(values) != 1 or not isinstance(values[0], str):
        return None
    return key, values[0]


def _tag_groups(shape: Shape) -> tuple[dict[str, list[tuple[Cond, str]]], list[Cond]]:
    """Conditionals on a required string-enum key (a tagged union), and the others."""
    groups: dict[str, list[tuple[Cond, str]]] = {}
    others: list[Cond] = []
    for cond in shape.conds:
        found = _discriminator(cond)
        if found is not None and found[0] in shape.required:
            tags = enum_values(flatten(shape.properties.get(found[0], [])))
            if tags is not None and all(isinstance(t, str) for t in tags):
                groups.setdefault(found[0], []).append((cond, found[1]))
                continue
        others.append(cond)
    return groups, others


def _keys(sub: Sub | None) -> frozenset[str]:
    if sub is None:
        return frozenset()
    shape = flatten([sub])
    return frozenset(shape.properties) | frozenset(shape.required)


def _subs_for(shape: Shape, key: str) -> list[Sub]:
    """The subschemas that apply to the value of ``key``."""
    subs = list(shape.properties.get(key, []))
    return subs + [sub for sub, siblings in shape.additional if key not in siblings]


def _branch(sub: Sub | None) -> Shape:
    """A ``then``/``else`` that may only constrain property values and required keys."""
    branch = Shape() if sub is None else flatten([sub])
    fits = _is_default(branch, "properties", "required", "types", "additional")
    if not fits or not _is_open(branch):
        raise Unsupported("a then/else that constrains more than property values")
    if branch.types is not None and "object" not in branch.types:
        raise Unsupported("a then/else that excludes objects")
    return branch


def _bound(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Unsupported(f"bound {value!r}")
    if isinstance(value, float) and not value.is_integer():
        raise Unsupported(f"non-integral bound {value!r} on an integer")
    return int(value)


def _union(types: Sequence[Any]) -> Any:
    return types[0] if len(types) == 1 else Union[tuple(types)]  # noqa: UP007


def _any_of(
    alternatives: Iterable[Callable[[], tuple[Any, Check | None]]],
) -> tuple[Any, Check | None]:
    """The union of the alternatives' types and their checks; an alternative that no value
    satisfies (:class:`Empty`) drops out, and ``Empty`` is raised when they all do."""
    parts, checks = [], []
    for alternative in alternatives:
        try:
            tp, check = alternative()
        except Empty:
            continue
        parts.append(tp)
        if check is not None:
            checks.append(check)
    if not parts:
        raise Empty
    return _union(parts), _checks.all_of(checks)


def _contains(tp: Any, predicate: Callable[[Any], bool]) -> bool:
    if predicate(tp):
        return True
    return any(_contains(arg, predicate) for arg in getattr(tp, "__args__", ()))


def _is_struct(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, msgspec.Struct)


def _is_scalar(tp: Any) -> bool:
    if tp in (str, int):
        return True
    args = list(getattr(tp, "__args__", None) or ())
    if getattr(tp, "__origin__", None) is Literal:
        return all(isinstance(a, str | int) and not isinstance(a, bool) for a in args)
    return bool(args) and args[0] in (str, int)  # Annotated[str|int, Meta]


def _annotated(tp: Any, meta: dict[str, Any]) -> Any:
    """``tp`` with msgspec constraints, if there are any."""
    return Annotated[tp, _META(**meta)] if meta else tp


def _attr_name(key: str, taken: set[str]) -> str:
    plain = key.isidentifier() and not key.startswith("_") and not keyword.iskeyword(key)
    name = key if plain else "f_" + re.sub(r"\W", "_", key)
    while name in taken:
        name += "_"
    taken.add(name)
    return name


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def deferred_checks(tp: Any) -> tuple[Any, tuple[tuple[str, PatternCheck], ...]] | None:
    """``tp`` without the ``__post_init__`` that checks string fields against patterns, and
    those checks, when that is all the hook does: the checks can then run later, over the
    distinct values of many decoded instances at once. ``None`` for any other type."""
    checks = getattr(tp, "__dynconform_field_checks__", None)
    if not _is_struct(tp) or not checks:
        return None
    if not all(isinstance(check, PatternCheck) for _, check in checks):
        return None
    config = tp.__struct_config__
    if config.array_like or config.omit_defaults:
        return None
    members = []
    for info in msgspec.structs.fields(tp):
        if info.default_factory is not msgspec.NODEFAULT:
            return None
        renamed = info.encode_name != info.name
        if info.default is msgspec.NODEFAULT:
            spec = msgspec.field(name=info.encode_name) if renamed else None
            members.append((info.name, info.type) if spec is None else (info.name, info.type, spec))
        else:
            default = msgspec.field(default=info.default, name=info.encode_name)
            members.append((info.name, info.type, default if renamed else info.default))
    namespace = {"__dynconform_residuals__": getattr(tp, "__dynconform_residuals__", ())}
    options: dict[str, Any] = {"forbid_unknown_fields": config.forbid_unknown_fields}
    if config.tag_field is not None:
        options["tag_field"], options["tag"] = config.tag_field, config.tag
    lean = msgspec.defstruct(
        tp.__name__ + "_lean", members, namespace=namespace, gc=config.gc, **options
    )
    return lean, tuple((attr, check) for attr, check in checks)


class Compiler:
    """Turns the shapes of one contract into msgspec types."""

    def __init__(self, mode: Mode, name: str) -> None:
        self.mode = mode
        self.name = name
        self.binary_pointers: set[str] = set()
        self._ids = itertools.count()

    def compile(self, sub: Sub) -> Compiled:
        """The type of the contract whose root schema is ``sub``."""
        tp, check = self.value(flatten([sub]), pointer="", as_field=False)
        if check is not None:
            raise Unsupported("a top-level check that msgspec cannot express")
        return Compiled(tp, frozenset(self.binary_pointers))

    def value(self, shape: Shape, pointer: str | None, as_field: bool) -> tuple[Any, Check | None]:
        """The type and extra check of one value; ``as_field``: the value is a Struct field
        (extra checks then run in the Struct's ``__post_init__``)."""
        if shape.never:
            raise Empty
        if _is_default(shape):
            return Any, None
        static = [(c, t) for c in shape.conds if (t := _type_test(c)) is not None]
        if static:
            return self._split_by_type(shape, static, as_field)
        types = _possible_types(shape)
        if "number" in types and "integer" not in types:
            raise Unsupported("non-integer numbers without integers")
        kinds = [t for t in types if t != "number"]
        pointer = pointer if len(kinds) == 1 else None
        return _any_of(functools.partial(self._typed, shape, k, pointer, as_field) for k in kinds)

    def _split_by_type(
        self, shape: Shape, static: list[tuple[Cond, set[str]]], as_field: bool
    ) -> tuple[Any, Check | None]:
        possible = _possible_types(shape)
        if any(t & _NUMERIC for _, t in static) and _NUMERIC & set(possible):
            raise Unsupported("type conditionals on numbers")
        rest = [c for c in shape.conds if all(c is not s for s, _ in static)]
        branches = []
        for kind in possible:
            if kind == "number":
                continue  # compiled with "integer"
            branch = shape.copy()
            branch.conds = list(rest)
            restrict_types(branch, set(_NUMERIC) if kind == "integer" else {kind})
            for cond, tested in static:
                chosen = cond.then if kind in tested else cond.else_
                if chosen is not None:
                    collect(chosen, branch)
            branches.append(branch)
        return _any_of(functools.partial(self.value, b, None, as_field) for b in branches)

    def _typed(
        self, shape: Shape, kind: str, pointer: str | None, as_field: bool
    ) -> tuple[Any, Check | None]:
        values = enum_values(shape)
        if kind == "null":
            return None, None
        if kind == "boolean":
            if values is None:
                return bool, None
            flags = [v for v in values if isinstance(v, bool)]
            if not flags:
                raise Empty
            return Literal[tuple(flags)], None
        if kind == "integer":
            return self._number(shape, values, "number" in _possible_types(shape), as_field)
        if kind == "string":
            return self._string(shape, values, as_field)
        if values is not None:
            raise Unsupported("enum of arrays or objects")
        if kind == "array":
            return self._array(shape, as_field)
        return self._object(shape, pointer)

    # -- scalars ------------------------------------------------------------------------

    def _number(
        self, shape: Shape, values: list[Any] | None, floats: bool, as_field: bool
    ) -> tuple[Any, Check | None]:
        if values is not None:
            if any(isinstance(v, float) for v in values):
                raise Unsupported("float enum values")
            ints = [v for v in values if isinstance(v, int) and not isinstance(v, bool)]
            ints = [v for v in ints if self._in_bounds(shape, v)]
            if not ints:
                raise Empty
            return Literal[tuple(ints)], None
        int_type, check = self._int(shape, as_field)
        if not floats:
            return int_type, check
        meta: dict[str, float] = {}
        for bounds, inclusive, exclusive, pick in (
            (shape.lower, "ge", "gt", max),
            (shape.upper, "le", "lt", min),
        ):
            for bound, strict in bounds:
                if abs(bound) > FLOAT_EXACT:
                    raise Unsupported("float bound beyond 2**53")
                key = exclusive if strict else inclusive
                meta[key] = pick(meta.get(key, bound), bound)
        return Union[int_type, _annotated(float, meta)], check  # noqa: UP007

    @staticmethod
    def _in_bounds(shape: Shape, value: int) -> bool:
        lower_ok = all(value > b if ex else value >= b for b, ex in shape.lower)
        upper_ok = all(value < b if ex else value <= b for b, ex in shape.upper)
        return lower_ok and upper_ok

    def _int(self, shape: Shape, as_field: bool) -> tuple[Any, Check | None]:
        lows = [_bound(b) + (1 if ex else 0) for b, ex in shape.lower]
        highs = [_bound(b) - (1 if ex else 0) for b, ex in shape.upper]
        lower, upper = max(lows, default=None), min(highs, default=None)
        if lower is not None and upper is not None and lower > upper:
            raise Empty
        meta: dict[str, int] = {}
        beyond: list[int | None] = [None, None]
        if lower is not None:
            if INT64_MIN <= lower <= INT64_MAX:
                meta["ge"] = lower
            elif lower > INT64_MAX or self.mode == "python":
                beyond[0] = lower
        if upper is not None:
            if INT64_MIN <= upper <= INT64_MAX:
                meta["le"] = upper
            elif upper < INT64_MIN or self.mode == "python" or upper < UINT64_MAX:
                beyond[1] = upper  # MessagePack integers never exceed UINT64_MAX
        tp = _annotated(int, meta)
        if beyond == [None, None]:
            return tp, None
        if not as_field:
            raise Unsupported("an integer bound beyond int64 outside a Struct field")
        return tp, _checks.int_range(beyond[0], beyond[1])

    def _string(
        self, shape: Shape, values: list[Any] | None, as_field: bool
    ) -> tuple[Any, Check | None]:
        if values is not None:
            allowed = [v for v in values if isinstance(v, str) and self._string_ok(shape, v)]
            if not allowed:
                raise Empty
            return Literal[tuple(allowed)], None
        meta: dict[str, Any] = {}
        if shape.min_length:
            meta["min_length"] = shape.min_length
        if shape.max_length is not None:
            meta["max_length"] = shape.max_length
        check: Check | None = None
        if shape.patterns:
            if as_field:
                check = PatternCheck(shape.patterns)
            elif len(shape.patterns) == 1:
                meta["pattern"] = shape.patterns[0]
            else:
                raise Unsupported("several patterns outside a Struct field")
        return _annotated(str, meta), check

    @staticmethod
    def _string_ok(shape: Shape, value: str) -> bool:
        if len(value) < shape.min_length:
            return False
        if shape.max_length is not None and len(value) > shape.max_length:
            return False
        return all(re.search(p, value) for p in shape.patterns)

    def _array(self, shape: Shape, as_field: bool) -> tuple[Any, Check | None]:
        if shape.prefix is not None:
            size = len(shape.prefix)
            if shape.min_items != size or shape.max_items != size or shape.unique:
                raise Unsupported("prefixItems other than a fixed-size tuple")
            members, member_checks = [], []
            for sub in shape.prefix:
                tp, check = self.value(flatten([sub]), None, as_field)
                members.append(tp)
                member_checks.append(check)
            return tuple.__class_getitem__(tuple(members)), _checks.members(member_checks)
        item_type: Any = Any
        item_check: Check | None = None
        if shape.items:
            item_type, item_check = self.value(flatten(shape.items), None, as_field)
        checks: list[Check] = []
        if item_check is not None:
            checks.append(_checks.each(item_check))
        if shape.unique:
            if not as_field or not _is_scalar(item_type):
                raise Unsupported("uniqueItems on non-scalar items")
            checks.append(_checks.unique)
        meta: dict[str, int] = {}
        if shape.min_items:
            meta["min_length"] = shape.min_items
        if shape.max_items is not None:
            meta["max_length"] = shape.max_items
        return _annotated(list[item_type], meta), _checks.all_of(checks)

    # -- objects ------------------------------------------------------------------------

    def _object(self, shape: Shape, pointer: str | None) -> tuple[Any, Check | None]:
        if self.mode == "msgpack" and self._is_binary_view(shape):
            if pointer is None:
                raise Unsupported("a binary view that no JSON pointer reaches")
            self.binary_pointers.add(pointer)
            return bytes, None
        closed = any(flatten([sub]).never for sub, _ in shape.additional)
        if not (
            shape.properties or shape.required or shape.property_names or shape.conds or closed
        ):
            value_type, check = self.value(flatten([s for s, _ in shape.additional]), None, False)
            if check is not None:
                raise Unsupported("a check on additional property values")
            meta: dict[str, int] = {}
            if shape.min_props:
                meta["min_length"] = shape.min_props
            if shape.max_props is not None:
                meta["max_length"] = shape.max_props
            return _annotated(dict[str, value_type], meta), None  # type: ignore[valid-type]
        groups, others = _tag_groups(shape)
        if len(groups) > 1:
            raise Unsupported("conditionals on two discriminators")
        if groups:
            ((key, conds),) = groups.items()
            return self._tagged(shape, key, conds, others, pointer), None
        base = shape.copy()
        base.conds = others
        return self._struct(base, pointer, None), None

    @staticmethod
    def _is_binary_view(shape: Shape) -> bool:
        if shape.types is not None and shape.types != {"object"}:
            return False
        if set(shape.properties) != {BINARY_VIEW_KEY} or shape.required != {BINARY_VIEW_KEY}:
            return False
        if not _is_default(flatten(shape.properties[BINARY_VIEW_KEY])):
            return False
        closed = any(
            flatten([sub]).never and BINARY_VIEW_KEY in siblings
            for sub, siblings in shape.additional
        )
        return closed and _is_default(shape, "types", "properties", "required", "additional")

    def _tagged(
        self,
        shape: Shape,
        key: str,
        conds: list[tuple[Cond, str]],
        others: list[Cond],
        pointer: str | None,
    ) -> Any:
        variants = []
        for tag in enum_values(flatten(shape.properties[key])) or []:
            branch = shape.copy()
            branch.conds = list(others)
            for cond, value in conds:
                chosen = cond.then if value == tag else cond.else_
                if chosen is not None:
                    collect(chosen, branch)
            if _tag_groups(branch)[0]:
                raise Unsupported("nested discriminators")
            try:
                key_type, key_check = self.value(flatten(branch.properties[key]), None, False)
                if key_check is not None:
                    raise Unsupported("a check on a discriminator")
                msgspec.convert(tag, key_type)
                variants.append(self._struct(branch, pointer, (key, tag)))
            except (Empty, msgspec.ValidationError):
                continue  # no instance with this tag is valid
        if not variants:
            raise Empty
        return _union(variants)

    def _struct(self, shape: Shape, pointer: str | None, tag: tuple[str, str] | None) -> Any:
        allowed = self._allowed_keys(shape)
        shape = shape.copy()
        presence_conds = [c for c in shape.conds if _presence_test(c) is not None]
        residual_conds = [c for c in shape.conds if _presence_test(c) is None]
        merged: set[str] = set()
        for cond in presence_conds:
            # Applied whichever way the test goes: stricter than the schema, never looser.
            for sub in (cond.then, cond.else_):
                for key, subs in _branch(sub).properties.items():
                    shape.properties.setdefault(key, []).extend(subs)
                    merged.add(key)
        keys = list(dict.fromkeys([*shape.properties, *sorted(shape.required)]))
        for cond in shape.conds:
            keys += sorted((_keys(cond.if_) | _keys(cond.then) | _keys(cond.else_)) - set(keys))
        if allowed is not None:
            if not shape.required <= allowed or not set(keys) <= allowed | set(shape.properties):
                raise Unsupported("a required or conditional key that is not allowed")
            keys = [k for k in keys if k in allowed] + sorted(allowed - set(keys))
        if tag is not None:
            keys = [k for k in keys if k != tag[0]]
        fields: list[tuple[Any, ...]] = []  # required first: no keyword-only Struct needed
        optional: list[tuple[Any, ...]] = []
        checks: list[tuple[str, Check]] = []
        attrs: dict[str, str] = {}
        types: dict[str, Any] = {}
        taken: set[str] = set()
        for key in keys:
            child = None if pointer is None else f"{pointer}/{_escape(key)}"
            try:
                tp, check = self.value(flatten(_subs_for(shape, key)), child, as_field=True)
            except Empty:
                if key in merged:
                    raise Unsupported(f"conditionals that contradict on {key!r}") from None
                if key in shape.required:
                    raise
                if allowed is None:
                    raise Unsupported(f"property {key!r} is forbidden") from None
                continue  # forbidden: the Struct rejects it as an unknown field
            attrs[key] = attr = _attr_name(key, taken)
            types[key] = tp
            if check is not None:
                checks.append((attr, check))
            renamed = attr != key
            if key in shape.required:
                fields.append((attr, tp, msgspec.field(name=key)) if renamed else (attr, tp))
            else:
                default = msgspec.field(default=UNSET, name=key) if renamed else UNSET
                optional.append((attr, _union([tp, UnsetType]), default))
        counted = self._counted(shape, attrs, allowed is not None)
        presence = [self._presence(c, attrs) for c in presence_conds]
        residuals = [self._residual(shape, c, attrs, types) for c in residual_conds]
        namespace: dict[str, Any] = {
            "__dynconform_residuals__": tuple(meta for _, meta in residuals)
        }
        hook = _checks.post_init(checks, counted, presence, [check for check, _ in residuals])
        if hook is not None:
            namespace["__post_init__"] = hook
            if not (counted or presence or residuals):
                namespace["__dynconform_field_checks__"] = tuple(checks)
        options: dict[str, Any] = {"forbid_unknown_fields": allowed is not None}
        if tag is not None:
            options["tag_field"], options["tag"] = tag
        name = re.sub(r"\W", "_", f"{self.name}_{next(self._ids)}")
        members = fields + optional
        return msgspec.defstruct(name, members, namespace=namespace, gc=False, **options)

    @staticmethod
    def _allowed_keys(shape: Shape) -> set[str] | None:
        """The keys an object may have, or ``None`` when any key may appear."""
        allowed: set[str] | None = None
        for sub in shape.property_names:
            names = flatten([sub])
            values = enum_values(names)
            if values is None or not _is_default(names, "enums", "types"):
                raise Unsupported("propertyNames other than an enum")
            allowed = set(values) if allowed is None else allowed & set(values)
        for sub, siblings in shape.additional:
            if flatten([sub]).never:
                allowed = set(siblings) if allowed is None else allowed & siblings
        if allowed is None and not _is_open(shape):
            raise Unsupported("additionalProperties with a schema beside properties")
        return allowed

    @staticmethod
    def _counted(
        shape: Shape, attrs: dict[str, str], closed: bool
    ) -> tuple[tuple[str, ...], int, int | None] | None:
        if shape.min_props <= len(shape.required) and shape.max_props is None:
            return None
        if not closed:
            raise Unsupported("minProperties/maxProperties on an open object")
        return tuple(attrs.values()), shape.min_props, shape.max_props

    @staticmethod
    def _presence(cond: Cond, attrs: dict[str, str]) -> Presence:
        tested = _presence_test(cond) or set()

        def names(keys: set[str]) -> tuple[str, ...]:
            if not keys <= set(attrs):
                raise Unsupported("a conditional that requires a forbidden key")
            return tuple(attrs[k] for k in sorted(keys))

        then, else_ = _branch(cond.then).required, _branch(cond.else_).required
        return Presence(names(tested), names(then), names(else_))

    def _residual(
        self, shape: Shape, cond: Cond, attrs: dict[str, str], types: dict[str, Any]
    ) -> tuple[Callable[[Any], str | None], Residual]:
        test = flatten([cond.if_])
        if not _is_default(test, "properties", "required"):
            raise Unsupported("an if that tests more than property values")
        expected: dict[str, list[Any]] = {}
        for key, subs in test.properties.items():
            inner = flatten(subs)
            values = enum_values(inner)
            if values is None or not _is_default(inner, "enums") or key not in attrs:
                raise Unsupported("an if that tests more than const/enum values")
            expected[attrs[key]] = values
        branches = []
        for sub in (cond.then, cond.else_):
            branch = _branch(sub)
            converts = []
            for key, subs in branch.properties.items():
                if key not in attrs or _contains(types[key], _is_struct):
                    raise Unsupported(f"a then/else on the structured property {key!r}")
                tp, check = self.value(flatten([*_subs_for(shape, key), *subs]), None, False)
                if check is not None or _contains(tp, lambda t: t is bytes):
                    raise Unsupported(f"a then/else on {key!r} that convert cannot check exactly")
                converts.append((attrs[key], tp))
            if not branch.required <= set(attrs):
                raise Unsupported("a then/else that requires a forbidden key")
            required = tuple(attrs[k] for k in sorted(branch.required))
            branches.append((required, tuple(converts)))
        if not test.required <= set(attrs):
            raise Unsupported("an if on a forbidden key")
        tested = tuple(attrs[k] for k in sorted(test.required))
        check = _checks.conditional(tested, expected, branches[0], branches[1])
        meta = Residual(frozenset(test.required), _keys(cond.then), _keys(cond.else_))
        return check, meta
