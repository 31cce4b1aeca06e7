"""JSON Schema compatibility rules (Confluent Schema Registry semantics), both directions."""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path
from typing import Any

import pytest

from dynconform.cli.compat_cmd import register_compat
from dynconform.contracts import InputError
from dynconform.contracts.export import export_contracts
from dynconform.stability import Status, compare_contracts, incompatibilities, render

OPEN = {"type": "object", "properties": {"a": {"type": "string"}}}
CLOSED = {**OPEN, "additionalProperties": False}

# (name, writer (old data), reader (new schema), rule when the reader reads the writer's data,
#  rule when the roles are swapped, None = compatible)
CASES: list[tuple[str, Any, Any, str | None, str | None]] = [
    (
        "property added to open model",
        OPEN,
        {**OPEN, "properties": {**OPEN["properties"], "b": {"type": "integer"}}},
        "property-added-to-open-content-model",
        None,
    ),
    (
        "property added to closed model",
        CLOSED,
        {**CLOSED, "properties": {**CLOSED["properties"], "b": {"type": "integer"}}},
        None,
        "property-removed-from-closed-content-model",
    ),
    ("content model closed", OPEN, CLOSED, "content-model-closed", None),
    (
        "content model narrowed to a schema",
        OPEN,
        {**OPEN, "additionalProperties": {"type": "string"}},
        "content-model-narrowed",
        None,
    ),
    (
        "required added without default",
        OPEN,
        {**OPEN, "required": ["a"]},
        "required-property-added",
        None,
    ),
    (
        "required added with default",
        OPEN,
        {
            "type": "object",
            "properties": {"a": {"type": "string", "default": ""}},
            "required": ["a"],
        },
        None,
        None,
    ),
    (
        "type narrowed number to integer",
        {"type": "number"},
        {"type": "integer"},
        "type-narrowed",
        None,
    ),
    (
        "type union narrowed",
        {"type": ["string", "null"]},
        {"type": "string"},
        "type-narrowed",
        None,
    ),
    ("type added where any was allowed", {}, {"type": "string"}, "type-narrowed", None),
    ("enum narrowed", {"enum": ["a", "b"]}, {"enum": ["a"]}, "enum-narrowed", None),
    ("enum added", {"type": "string"}, {"type": "string", "enum": ["a"]}, "enum-added", None),
    ("const vs enum", {"const": "a"}, {"enum": ["a", "b"]}, None, "enum-narrowed"),
    (
        "minimum raised",
        {"type": "integer", "minimum": 0},
        {"type": "integer", "minimum": 1},
        "minimum-increased",
        None,
    ),
    (
        "maximum lowered",
        {"type": "integer", "maximum": 10},
        {"type": "integer", "maximum": 9},
        "maximum-decreased",
        None,
    ),
    (
        "exclusive minimum at same value",
        {"type": "number", "minimum": 0},
        {"type": "number", "exclusiveMinimum": 0},
        "minimum-increased",
        None,
    ),
    (
        "bound added",
        {"type": "integer"},
        {"type": "integer", "maximum": 5},
        "maximum-decreased",
        None,
    ),
    (
        "maxLength lowered",
        {"type": "string", "maxLength": 8},
        {"type": "string", "maxLength": 4},
        "max-length-decreased",
        None,
    ),
    (
        "minLength raised",
        {"type": "string"},
        {"type": "string", "minLength": 1},
        "min-length-increased",
        None,
    ),
    (
        "minItems raised",
        {"type": "array", "minItems": 0},
        {"type": "array", "minItems": 2},
        "min-items-increased",
        None,
    ),
    (
        "maxItems lowered",
        {"type": "array", "maxItems": 3},
        {"type": "array", "maxItems": 2},
        "max-items-decreased",
        None,
    ),
    (
        "pattern added",
        {"type": "string"},
        {"type": "string", "pattern": "^a"},
        "pattern-changed",
        None,
    ),
    (
        "multipleOf changed",
        {"type": "integer", "multipleOf": 4},
        {"type": "integer", "multipleOf": 2},
        None,
        "multiple-of-changed",
    ),
    (
        "items type narrowed",
        {"type": "array", "items": {"type": "number"}},
        {"type": "array", "items": {"type": "integer"}},
        "type-narrowed",
        None,
    ),
    (
        "nested property type narrowed",
        {
            "type": "object",
            "properties": {
                "x": {"type": "object", "properties": {"y": {"type": ["integer", "null"]}}}
            },
        },
        {
            "type": "object",
            "properties": {"x": {"type": "object", "properties": {"y": {"type": "integer"}}}},
        },
        "type-narrowed",
        None,
    ),
    (
        "anyOf branch removed",
        {"anyOf": [{"type": "string"}, {"type": "integer"}]},
        {"anyOf": [{"type": "string"}]},
        "combined-branch-removed",
        None,
    ),
    ("reader closed to nothing", True, False, "schema-closed", None),
]


@pytest.mark.parametrize(
    ("name", "writer", "reader", "forward", "backward"), CASES, ids=[c[0] for c in CASES]
)
def test_rule_both_directions(
    name: str, writer: Any, reader: Any, forward: str | None, backward: str | None
) -> None:
    for w, r, want in ((writer, reader, forward), (reader, writer, backward)):
        found = incompatibilities(w, r)
        rules = {i.rule for i in found}
        if want is None:
            assert not found, f"{name}: unexpected {found}"
        else:
            assert want in rules, f"{name}: expected {want}, got {found}"
            assert all(i.message for i in found)


def test_identical_schema_is_compatible() -> None:
    assert incompatibilities(CLOSED, copy.deepcopy(CLOSED)) == []


def test_pointer_names_the_property() -> None:
    writer = {"type": "object", "properties": {"n": {"type": "number"}}}
    reader = {"type": "object", "properties": {"n": {"type": "integer"}}}
    (item,) = incompatibilities(writer, reader)
    assert item.pointer == "/properties/n"
    assert "number" in item.message


def test_ref_resolution_across_the_schema_set() -> None:
    def side(maximum: int) -> tuple[dict[str, Any], dict[str, Any]]:
        target = {
            "$id": "https://x.test/t.v1.json",
            "$defs": {"N": {"type": "integer", "maximum": maximum}},
            "type": "object",
            "properties": {"n": {"$ref": "#/$defs/N"}},
        }
        root = {
            "$id": "https://x.test/r.v1.json",
            "properties": {"t": {"$ref": "https://x.test/t.v1.json"}},
        }
        return root, target

    old_root, old_t = side(10)
    new_root, new_t = side(5)
    found = incompatibilities(old_root, new_root, writer_set=[old_t], reader_set=[new_t])
    assert [i.rule for i in found] == ["maximum-decreased"]
    assert found[0].pointer == "/properties/t/properties/n"
    assert incompatibilities(new_root, old_root, writer_set=[new_t], reader_set=[old_t]) == []
    missing = incompatibilities(old_root, new_root, writer_set=[old_t], reader_set=[])
    assert [i.rule for i in missing] == ["ref-unresolved"]


def _schema(version: str, props: dict[str, Any], closed: bool = False) -> dict[str, Any]:
    major = version.split(".")[0]
    out: dict[str, Any] = {
        "$id": f"https://x.test/demo.thing.v{major}.json",
        "type": "object",
        "properties": props,
        "x-dynconform": {"name": "demo.thing", "version": version},
    }
    if closed:
        out["additionalProperties"] = False
    return out


def _write(path: Path, schema: dict[str, Any]) -> str:
    path.write_text(json.dumps(schema), encoding="utf-8")
    return str(path)


def test_modes_and_transitive(tmp_path: Path) -> None:
    v1 = _write(tmp_path / "v1.json", _schema("1.0.0", {"a": {"type": "integer"}}, closed=True))
    v2 = _write(tmp_path / "v2.json", _schema("1.1.0", {"a": {"type": "number"}}, closed=True))
    v3 = _write(tmp_path / "v3.json", _schema("1.2.0", {"a": {"type": "integer"}}, closed=True))
    assert compare_contracts([v1, v2], "backward").ok
    forward = compare_contracts([v1, v2], "forward")
    assert not forward.ok
    assert forward.violations[0].kind == "contract-incompatible"
    assert "forward (type-narrowed)" in forward.violations[0].message
    assert not compare_contracts([v1, v2], "full").ok
    # backward: v3 reads v2 but not v1; only the transitive mode sees v1.
    t1 = _write(tmp_path / "t1.json", _schema("1.0.0", {"a": {"type": "number"}}))
    t2 = _write(tmp_path / "t2.json", _schema("1.1.0", {"a": {"type": "integer"}}))
    t3 = _write(tmp_path / "t3.json", _schema("1.2.0", {"a": {"type": "integer"}}))
    assert compare_contracts([t1, t2, t3], "backward").ok
    assert not compare_contracts([t1, t2, t3], "backward-transitive").ok
    # forward: v1 cannot read v3's numbers, v2 can.
    assert compare_contracts([v1, v2, v2], "forward").ok
    assert not compare_contracts([v1, v2, v2], "forward-transitive").ok
    assert not compare_contracts([v1, v2, v2], "full-transitive").ok
    assert compare_contracts([v1, v3], "full").ok


def test_major_version_allows_breaks(tmp_path: Path) -> None:
    old = _write(tmp_path / "old.json", _schema("1.0.0", {"a": {"type": "string"}}))
    new = _write(tmp_path / "new.json", _schema("2.0.0", {"a": {"type": "integer"}}))
    report = compare_contracts([old, new], "backward")
    assert report.ok
    assert report.findings
    assert all(f.status is Status.ALLOWED for f in report.findings)
    assert "major version changed 1 -> 2" in report.findings[0].reason


def test_directories_match_by_name_and_report_removal(tmp_path: Path) -> None:
    for side, names in (("old", ("one", "two")), ("new", ("one", "three"))):
        (tmp_path / side).mkdir()
        for n in names:
            s = _schema("1.0.0", {"a": {"type": "string"}})
            s["x-dynconform"]["name"] = f"demo.{n}"
            s["$id"] = f"https://x.test/demo.{n}.v1.json"
            _write(tmp_path / side / f"{n}.json", s)
    report = compare_contracts([str(tmp_path / "old"), str(tmp_path / "new")])
    kinds = {(f.kind, f.path) for f in report.findings}
    assert ("contract-removed", "contract:demo.two") in kinds
    assert ("contract-added", "contract:demo.three") in kinds
    assert [f.path for f in report.violations] == ["contract:demo.two"]


def test_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such schema"):
        compare_contracts([str(tmp_path / "nope.json"), "builtin"])
    bad = tmp_path / "bad.json"
    bad.write_text("{", encoding="utf-8")
    with pytest.raises(InputError, match="not a JSON schema"):
        compare_contracts([str(bad), "builtin"])
    with pytest.raises(InputError, match="unknown mode"):
        compare_contracts(["builtin", "builtin"], "sideways")


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    register_compat(parser.add_subparsers())
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


def test_cli_reports_reason_and_exit_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = _write(tmp_path / "old.json", _schema("1.0.0", {"a": {"type": "string"}}))
    new = _write(tmp_path / "new.json", _schema("1.0.1", {"a": {"type": "string", "maxLength": 3}}))
    assert _cli(["compat", old, new, "--mode", "forward"]) == 0
    assert _cli(["compat", old, new, "--mode", "backward"]) == 1
    out = capsys.readouterr().out
    assert "max-length-decreased" in out
    assert "verdict: FAIL" in out
    assert _cli(["compat", old, new, "--format", "json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["verdict"] == "fail"
    assert data["findings"][0]["subject"] == "/properties/a"
    waivers = tmp_path / "w.yaml"
    waivers.write_text(
        "- path: contract:demo.thing\n  kind: contract-incompatible\n  reason: announced\n",
        encoding="utf-8",
    )
    assert _cli(["compat", old, new, "--waivers", str(waivers)]) == 0


def test_bundled_contracts_stay_compatible_with_baseline() -> None:
    """The test command fails when a contract changes incompatibly without a new major
    version. Refresh tests/fixtures/contracts-baseline with export_contracts on a release."""
    baseline = Path(__file__).parents[1] / "fixtures" / "contracts-baseline"
    report = compare_contracts([str(baseline), "builtin"], "backward")
    assert report.ok, render(report, "text", limit=50)
    assert not [f for f in report.findings if f.kind == "contract-removed"]


def test_baseline_check_catches_an_unversioned_break(tmp_path: Path) -> None:
    baseline = Path(__file__).parents[1] / "fixtures" / "contracts-baseline"
    new = tmp_path / "new"
    export_contracts(new)
    target = new / "health" / "health.frontend-live.json"
    schema = json.loads(target.read_text(encoding="utf-8"))
    schema.setdefault("properties", {})["added_field"] = {"type": "string"}
    schema["required"] = [*schema.get("required", []), "added_field"]
    target.write_text(json.dumps(schema), encoding="utf-8")
    report = compare_contracts([str(baseline), str(new)], "backward")
    assert not report.ok
    assert {f.path for f in report.violations} == {"contract:health.frontend-live"}
    assert any("required-property-added" in f.message for f in report.violations)
    schema["x-dynconform"]["version"] = "2.0.0"
    target.write_text(json.dumps(schema), encoding="utf-8")
    assert compare_contracts([str(baseline), str(new)], "backward").ok
