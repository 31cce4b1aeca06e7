"""The schema compiler: what it compiles, what it refuses, and that it is never looser.

Soundness is the property that matters: a value that a compiled type accepts is valid for
the JSON Schema. (The compiled type may reject a valid value; the fast path then asks the
reference validator.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from test_fast_json import CONTRACTS, RECORDS

from dynconform.contracts import Catalog
from dynconform.contracts.fast import FastValidator
from dynconform.contracts.fast._compile import Compiler, Empty
from dynconform.contracts.fast._shape import Sub, Unsupported

CAPTURES = Path(__file__).parents[1] / "fixtures" / "ai-dynamo-1.6.1"
CATALOG = Catalog.load()
FAST = FastValidator()

HOT_MSGPACK = [
    "events.envelope",
    "events.kv-events",
    "events.kv-metrics",
    "events.forward-pass-metrics",
    "events.active-sequences",
]
HOT_PYTHON = [
    "events.message",
    "events.envelope",
    "events.kv-events",
    "events.kv-metrics",
    "events.forward-pass-metrics",
    "events.active-sequences",
    "discovery.record",
    "discovery.endpoint",
    "discovery.model",
    "discovery.mdc",
    "discovery.event-channel",
    "discovery.event-source",
]


@pytest.mark.parametrize("name", HOT_MSGPACK)
def test_hot_contracts_compile_for_messagepack(name: str) -> None:
    assert FAST.compiled(name, "msgpack") is not None, FAST.unsupported.get((name, "msgpack"))


@pytest.mark.parametrize("name", HOT_PYTHON)
def test_hot_contracts_compile_for_json_values(name: str) -> None:
    assert FAST.compiled(name, "python") is not None, FAST.unsupported.get((name, "python"))


def test_the_envelope_payload_is_its_only_binary_view() -> None:
    compiled = FAST.compiled("events.envelope", "msgpack")
    assert compiled is not None
    assert compiled.binary_pointers == {"/payload"}
    python = FAST.compiled("events.envelope", "python")
    assert python is not None
    assert python.binary_pointers == frozenset()


def test_what_does_not_compile_says_why() -> None:
    assert FAST.compiled("discovery.entry", "python") is None
    assert "then/else" in FAST.unsupported[("discovery.entry", "python")]


# -- synthetic schemas ---------------------------------------------------------------------

BASE = "https://dynconform.dev/schemas/test/"


def compile_schema(schema: dict[str, Any], mode: str = "python") -> Any:
    uri = BASE + "root.json"
    root = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": uri, **schema}
    resource = Resource.from_contents(root, default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource(uri, resource)
    compiled = Compiler(mode, "test").compile(Sub(root, registry.resolver(base_uri=uri)))  # type: ignore[arg-type]
    return compiled.type, Draft202012Validator(root, registry=registry)


def accepts(tp: Any, value: Any) -> bool:
    try:
        msgspec.convert(value, tp)
        return True
    except msgspec.ValidationError:
        return False


U64 = {"type": "integer", "minimum": 0, "maximum": 2**64 - 1}

FEATURES: dict[str, dict[str, Any]] = {
    "scalars": {
        "type": "object",
        "required": ["a"],
        "properties": {
            "a": U64,
            "b": {"type": ["string", "null"], "minLength": 2, "pattern": "^x"},
            "c": {"type": "number", "minimum": 0, "exclusiveMaximum": 10},
            "d": {"enum": ["p", "q", None, 3]},
            "e": {"const": True},
        },
        "additionalProperties": True,
    },
    "closed": {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "integer"}},
        "additionalProperties": False,
        "minProperties": 1,
        "maxProperties": 1,
    },
    "names": {
        "type": ["object", "string"],
        "allOf": [
            {"if": {"type": "string"}, "then": {"const": "a"}},
            {
                "if": {"type": "object"},
                "then": {
                    "maxProperties": 1,
                    "minProperties": 1,
                    "propertyNames": {"enum": ["a", "b"]},
                },
            },
        ],
        "properties": {"a": {"type": "array", "items": U64}, "b": {"type": "null"}},
    },
    "tagged": {
        "type": "object",
        "required": ["kind"],
        "properties": {"kind": {"enum": ["a", "b", "c"]}},
        "allOf": [
            {
                "if": {"properties": {"kind": {"const": "a"}}, "required": ["kind"]},
                "then": {"required": ["x"], "properties": {"x": {"type": "integer"}}},
            },
            {
                "if": {"properties": {"kind": {"const": "b"}}, "required": ["kind"]},
                "then": {"properties": {"x": {"type": "string"}}},
                "else": {"properties": {"y": {"type": "boolean"}}},
            },
        ],
    },
    "presence": {
        "type": "object",
        "if": {"required": ["many"]},
        "then": {
            "properties": {"many": {"type": "array", "minItems": 1, "items": {"type": "integer"}}}
        },
        "else": {"required": ["one"], "properties": {"one": {"type": "integer"}}},
    },
    "residual": {
        "type": "object",
        "required": ["topic", "meta"],
        "properties": {"topic": {"type": "string"}, "meta": {}},
        "allOf": [
            {
                "if": {"properties": {"topic": {"const": "t"}}, "required": ["topic"]},
                "then": {"properties": {"meta": {"type": "object", "required": ["k"]}}},
                "else": {"properties": {"meta": {"type": "string"}}},
            }
        ],
    },
    "arrays": {
        "type": "array",
        "items": {
            "type": "object",
            "properties": {
                "pair": {"type": "array", "prefixItems": [U64, U64], "minItems": 2, "maxItems": 2},
                "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
                "map": {"type": "object", "additionalProperties": {"type": "string"}},
                "ref": {"$ref": "#/$defs/leaf"},
            },
        },
        "$defs": {"leaf": {"type": ["object", "null"], "required": ["v"]}},
    },
}

KEYS = ["a", "b", "c", "d", "e", "x", "y", "k", "v", "kind", "many", "one", "topic", "meta"]
KEYS += ["pair", "tags", "map", "ref"]
SCALARS = st.sampled_from(
    [None, True, False, 0, 1, -1, 3, 2**63, 2**64 - 1, 2**64, 1.0, 2.5, 10, 9.99]
) | st.sampled_from(["", "a", "b", "c", "p", "xx", "x1", "t"])
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=5)
    ),
    max_leaves=12,
)


@pytest.mark.parametrize("name", sorted(FEATURES))
def test_synthetic_schemas_compile(name: str) -> None:
    tp, _ = compile_schema(FEATURES[name])
    assert tp is not Any


@pytest.mark.parametrize("name", sorted(FEATURES))
@given(value=JSON)
def test_compiled_types_are_never_looser_than_their_schema(name: str, value: Any) -> None:
    tp, reference = compile_schema(FEATURES[name])
    if accepts(tp, value):
        assert reference.is_valid(value), value


@pytest.mark.parametrize(
    ("name", "valid", "invalid"),
    [
        ("scalars", {"a": 2**64 - 1, "b": "xa", "c": 9.5, "d": 3, "e": True}, {"a": 2**64}),
        ("closed", {"b": 1}, {"a": "x", "b": 1}),
        ("names", {"a": [1, 2]}, {"c": None}),
        ("names", "a", "b"),
        ("tagged", {"kind": "a", "x": 1, "y": False}, {"kind": "a"}),
        ("tagged", {"kind": "c", "y": True}, {"kind": "c", "y": 1}),
        ("presence", {"many": [1]}, {"many": []}),
        ("presence", {"one": 1}, {"other": 1}),
        ("residual", {"topic": "t", "meta": {"k": 1}}, {"topic": "t", "meta": "s"}),
        ("residual", {"topic": "u", "meta": "s"}, {"topic": "u", "meta": {}}),
        (
            "arrays",
            [{"pair": [1, 2], "tags": ["a", "b"], "map": {"k": "v"}, "ref": None}],
            [{"tags": ["a", "a"]}],
        ),
    ],
)
def test_compiled_types_accept_and_reject_like_their_schema(
    name: str, valid: Any, invalid: Any
) -> None:
    tp, reference = compile_schema(FEATURES[name])
    assert reference.is_valid(valid)
    assert accepts(tp, valid)
    assert not reference.is_valid(invalid)
    assert not accepts(tp, invalid)


def test_messagepack_mode_turns_a_binary_view_into_bytes() -> None:
    view = {
        "type": "object",
        "required": ["__msgpack__"],
        "properties": {"__msgpack__": {}},
        "additionalProperties": False,
    }
    tp, _ = compile_schema({"type": "object", "properties": {"payload": view}}, mode="msgpack")
    assert msgspec.msgpack.decode(msgspec.msgpack.encode({"payload": b"\x01"}), type=tp)
    with pytest.raises(msgspec.ValidationError):
        msgspec.msgpack.decode(msgspec.msgpack.encode({"payload": "text"}), type=tp)


@pytest.mark.parametrize(
    "schema",
    [
        {"anyOf": [{"type": "string"}, {"type": "integer"}]},
        {"oneOf": [{"type": "string"}]},
        {"not": {"type": "string"}},
        {"type": "string", "format": "date-time"},
        {"type": "integer", "multipleOf": 2},
        {"type": "object", "patternProperties": {"^a": {}}},
        {"type": "object", "properties": {"a": {}}, "additionalProperties": {"type": "string"}},
        {"type": "object", "properties": {"a": {}}, "minProperties": 2},
        {"type": "object", "propertyNames": {"pattern": "^a"}},
        {"type": "array", "prefixItems": [{}], "items": {}},
        {"type": "array", "items": {"type": "object"}, "uniqueItems": True},
        {"enum": [[1], {"a": 1}]},
        {"enum": [1.5]},
        {"type": "object", "unevaluatedProperties": False},
        {"if": {"minimum": 3}, "then": {"type": "integer"}},
    ],
)
def test_constructs_that_do_not_compile_exactly_are_refused(schema: dict[str, Any]) -> None:
    with pytest.raises(Unsupported):
        compile_schema(schema)


def test_a_schema_that_nothing_satisfies_is_empty() -> None:
    with pytest.raises(Empty):
        compile_schema({"type": "string", "enum": [1, 2]})


# -- the hot contracts on real and mutated values ------------------------------------------


def _real(name: str) -> list[Any]:
    if name.startswith("discovery."):
        if name == "discovery.mdc":
            return [r["card_json"] for r in RECORDS if r["type"] == "Model"]
        if name in CONTRACTS.values():
            return [r for r in RECORDS if CONTRACTS[r["type"]] == name]
        return RECORDS
    lines = (CAPTURES / "etcd_nats" / "nats_messages.jsonl").read_text().splitlines()
    messages = [json.loads(line) for line in lines[:600]]
    events = [m for m in messages if m["plane"] == "event_plane"]
    if name == "events.message":
        return messages
    if name == "events.envelope":
        return [m["decoded"] for m in events]
    return [
        m["decoded"]["payload"]["__msgpack__"]
        for m in events
        if CATALOG.get("events.envelope").dispatch.contracts.get(m["decoded"]["topic"]) == name  # type: ignore[union-attr]
    ]


@pytest.mark.parametrize("name", HOT_PYTHON)
def test_real_instances_pass_their_compiled_type(name: str) -> None:
    compiled = FAST.compiled(name, "python")
    assert compiled is not None
    values = _real(name)
    assert values
    reference = CATALOG.validator(name)
    for value in values:
        if reference.is_valid(value):
            assert accepts(compiled.type, value), value


def _mutations(value: Any) -> list[Any]:
    out = []

    def walk(node: Any, replace: Any) -> None:
        if isinstance(node, dict):
            for key in list(node):
                for weird in (None, -1, 1.0, "x", 2**64, {}, [], True):
                    out.append(replace({**node, key: weird}))
                out.append(replace({k: v for k, v in node.items() if k != key}))
                walk(node[key], lambda new, key=key: replace({**node, key: new}))
            out.append(replace({**node, "extra": 1}))
        elif isinstance(node, list) and node:
            out.append(replace([]))
            walk(node[0], lambda new: replace([new, *node[1:]]))

    walk(value, lambda new: new)
    return out


@pytest.mark.parametrize("name", HOT_PYTHON)
def test_mutated_real_instances_are_never_accepted_when_invalid(name: str) -> None:
    compiled = FAST.compiled(name, "python")
    assert compiled is not None
    reference = CATALOG.validator(name)
    rejected = 0
    for value in _real(name)[:2]:
        for mutant in _mutations(value)[:1500]:
            if accepts(compiled.type, mutant):
                assert reference.is_valid(mutant), mutant
            else:
                rejected += 1
    assert rejected > 0
