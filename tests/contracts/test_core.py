"""The validator core on a small synthetic catalogue, independent of the bundled schemas."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from dynconform.contracts import (
    Catalog,
    Contract,
    Dispatch,
    RuleRegistry,
    UnknownContractError,
    Validator,
    correlation_rule,
    json_pointer,
    record_rule,
    resolve_pointer,
    stream_rule,
)

BASE = "https://dynconform.dev/schemas/test/"


def _contract(name: str, schema: dict[str, Any], dispatch: Dispatch | None = None) -> Contract:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": BASE + name,
        **schema,
    }
    return Contract(
        name=name,
        family="events",
        version="1.0.0",
        schema_id=schema["$id"],
        title=name,
        description="",
        schema=schema,
        resource=name,
        backed_by=(),
        dispatch=dispatch,
    )


ITEM = _contract(
    "t.item",
    {
        "type": "object",
        "required": ["seq", "value"],
        "properties": {
            "seq": {"type": "integer", "minimum": 0, "maximum": 18446744073709551615},
            "value": {"$ref": BASE + "t.value"},
        },
    },
)
VALUE = _contract("t.value", {"type": "string", "maxLength": 5})
ENVELOPE = _contract(
    "t.envelope",
    {
        "type": "object",
        "required": ["kind", "body"],
        "properties": {"kind": {"enum": ["item"]}, "body": {}},
    },
    dispatch=Dispatch(pointer="/body", key="/kind", contracts={"item": "t.item"}),
)


@record_rule("t.value-not-bad", contract="t.item", summary="value is not 'bad'")
def _not_bad(instance: Any) -> Iterator[tuple[str, str]]:
    if instance["value"] == "bad":
        yield "/value", "value is bad"


@stream_rule("t.seq-plus-one", contract="t.item", summary="seq grows by one")
class _SeqPlusOne:
    def __init__(self) -> None:
        self.last: int | None = None

    def feed(self, instance: Any, index: int) -> Iterator[tuple[str, str]]:
        if self.last is not None and instance["seq"] != self.last + 1:
            yield "/seq", f"expected {self.last + 1}, got {instance['seq']}"
        self.last = instance["seq"]

    def finish(self) -> Iterator[tuple[str, str]]:
        if self.last is not None and self.last >= 100:
            yield "", "stream ended at seq >= 100"


@pytest.fixture
def validator() -> Validator:
    return Validator(Catalog([ITEM, VALUE, ENVELOPE]), RuleRegistry([_not_bad, _SeqPlusOne]))


def test_valid_instance(validator: Validator) -> None:
    report = validator.validate("t.item", {"seq": 1, "value": "ok"})
    assert report.ok
    assert report.instances == 1
    assert report.checked == {"t.item": 1}


def test_schema_violation_has_keyword_rule_and_pointer(validator: Validator) -> None:
    report = validator.validate("t.item", {"seq": 2**64, "value": "toolong"})
    assert sorted((v.rule, v.pointer) for v in report.violations) == [
        ("schema.maxLength", "/value"),
        ("schema.maximum", "/seq"),
    ]


def test_missing_required(validator: Validator) -> None:
    (violation,) = validator.validate("t.item", {"seq": 1}).violations
    assert violation.rule == "schema.required"
    assert violation.contract == "t.item"


def test_record_rule_runs_only_on_schema_valid_instances(validator: Validator) -> None:
    assert validator.validate("t.item", {"seq": 1, "value": "bad"}).rules() == {"t.value-not-bad"}
    assert validator.validate("t.item", {"seq": "x", "value": "bad"}).rules() == {"schema.type"}


def test_stream_rule_sees_order_and_finish(validator: Validator) -> None:
    items = [{"seq": 1, "value": "a"}, {"seq": 2, "value": "b"}, {"seq": 2, "value": "c"}]
    report = validator.validate_stream("t.item", items)
    (violation,) = report.violations
    assert (violation.rule, violation.index, violation.pointer) == ("t.seq-plus-one", 2, "/seq")
    ended = validator.validate_stream("t.item", [{"seq": 100, "value": "a"}])
    ((rule, index),) = [(v.rule, v.index) for v in ended.violations]
    assert (rule, index) == ("t.seq-plus-one", None)
    empty = validator.validate_stream("t.item", [])
    assert (empty.ok, empty.instances) == (True, 0)


def test_each_run_gets_fresh_stream_state(validator: Validator) -> None:
    items = [{"seq": 5, "value": "a"}]
    assert validator.validate_stream("t.item", items).ok
    assert validator.validate_stream("t.item", items).ok


def test_dispatch_validates_nested_value_with_prefixed_pointer(validator: Validator) -> None:
    report = validator.validate_stream(
        "t.envelope",
        [
            {"kind": "item", "body": {"seq": 1, "value": "a"}},
            {"kind": "item", "body": {"seq": 3, "value": "bad"}},
        ],
    )
    assert report.checked == {"t.envelope": 2, "t.item": 2}
    assert sorted((v.contract, v.rule, v.pointer) for v in report.violations) == [
        ("t.item", "t.seq-plus-one", "/body/seq"),
        ("t.item", "t.value-not-bad", "/body/value"),
    ]


def test_unknown_contract_suggests_close_names(validator: Validator) -> None:
    with pytest.raises(UnknownContractError, match=r"did you mean t\.item"):
        validator.validate("t.iten", {})


def test_rules_for_unknown_contracts_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"unknown contracts: t\.item"):
        Validator(Catalog([VALUE]), RuleRegistry([_not_bad]))


def test_duplicate_rule_ids_are_rejected() -> None:
    with pytest.raises(ValueError, match="duplicate rule id"):
        RuleRegistry([_not_bad, _not_bad])


def test_json_pointer_escapes_and_resolves() -> None:
    doc = {"a/b": [{"~c": 1}]}
    pointer = json_pointer(["a/b", 0, "~c"])
    assert pointer == "/a~1b/0/~0c"
    assert resolve_pointer(doc, pointer) == 1
    assert resolve_pointer(doc, "") is doc


@correlation_rule("t.value-declared", contracts=("t.value", "t.item"), summary="values declared")
class _ValueDeclared:
    def __init__(self) -> None:
        self.declared: set[str] = set()
        self.used: set[str] = set()

    def observe(self, contract: str, instance: Any, index: int | None) -> Iterator[tuple[str, str]]:
        if contract == "t.value":
            self.declared.add(instance)
        elif instance["value"] not in self.declared:
            yield "/value", f"{instance['value']!r} used before it was declared"
        else:
            self.used.add(instance["value"])

    def finish(self) -> Iterator[tuple[str, str]]:
        for unused in sorted(self.declared - self.used):
            yield "", f"{unused!r} declared but never used"


def test_correlation_rule_sees_several_sources() -> None:
    validator = Validator(Catalog([ITEM, VALUE, ENVELOPE]), RuleRegistry([_ValueDeclared]))
    report = validator.validate_many(
        [
            ("t.value", ["a", "b"]),
            ("t.item", [{"seq": 1, "value": "a"}, {"seq": 2, "value": "zz"}]),
        ]
    )
    assert report.instances == 4
    assert [(v.contract, v.rule, v.pointer, v.index) for v in report.violations] == [
        ("t.item", "t.value-declared", "/value", 1),
        ("t.value", "t.value-declared", "", None),
    ]
    assert "'b' declared but never used" in report.violations[1].message
    # nested (dispatched) instances are observed too
    nested = validator.validate_many(
        [("t.value", ["a"]), ("t.envelope", [{"kind": "item", "body": {"seq": 1, "value": "a"}}])]
    )
    assert nested.ok
