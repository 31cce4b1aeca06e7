from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from dynconform.contracts import InputError
from dynconform.reports import (
    API_VERSION,
    KIND,
    CheckResult,
    ConformanceReport,
    Implementation,
    junit_xml,
    load_report,
    profile_outcome,
    report_json,
    summary_table,
    write_junit,
    write_report,
)

IMPL = Implementation("ai-dynamo", "1.6.1", "dynamo", "file", {"engine": "dynamo.mocker"})


def result(check_id: str, status: str = "passed", **extra: object) -> CheckResult:
    base: dict[str, object] = {"profiles": ("core",), "title": check_id.title()}
    base.update(extra)
    return CheckResult(id=check_id, status=status, **base)  # type: ignore[arg-type]


def build(results: list[CheckResult]) -> ConformanceReport:
    return ConformanceReport.build(
        IMPL,
        results,
        profiles=("core", "kv-routing"),
        supported_features=("discovery-tap",),
        date="2026-11-22T14:00:00+00:00",
        dynconform_version="0.1.0",
        seed=7,
        duration=3.25,
        timeouts={"request": 30.0},
        taps={"events": {"messages": 12}},
    )


def test_outcomes_per_profile_level() -> None:
    results = [
        result("a.one"),
        result("a.two", "skipped", features=("kv-events",), level="extended"),
        result("b.three", profiles=("kv-routing",)),
        result("b.four", "failed", profiles=("kv-routing",), reason="boom"),
    ]
    report = build(results)
    core, kv = report.profiles
    assert (core.core.result, core.extended.result) == ("success", "partial")
    assert core.unsupported_features == ("kv-events",)
    assert core.extended.skipped_checks == ("a.two",)
    assert kv.core.result == "failure"
    assert kv.core.failed_checks == ("b.four",)
    assert not report.passed
    assert report.statistics.total == 4


def test_known_deviations_and_recommendations_do_not_block() -> None:
    deviation = result("c.dev", "failed", known_deviation="documented")
    advice = result("c.should", "failed", severity="recommended")
    assert not deviation.blocking
    assert not advice.blocking
    assert profile_outcome([result("c.ok"), deviation, advice]) == "partial"
    assert profile_outcome([]) == "success"
    assert build([deviation, advice]).passed
    assert build([deviation]).statistics.known_deviations == 1


def test_round_trip_json_and_yaml(tmp_path: Path) -> None:
    violation = {"contract": "http.error", "rule": "schema.required", "pointer": "", "message": "x"}
    report = build([result("a.one"), result("a.two", "error", violations=(violation,))])
    json_path, yaml_path = write_report(report, tmp_path)
    data = json.loads(json_path.read_text())
    assert (data["apiVersion"], data["kind"]) == (API_VERSION, KIND)
    assert data["checks"][1]["violations"] == [violation]
    assert yaml.safe_load(yaml_path.read_text()) == data
    for path in (json_path, yaml_path):
        again = load_report(path)
        assert again.to_dict() == report.to_dict()


def test_load_rejects_other_kinds(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"apiVersion": "v9", "kind": KIND}))
    with pytest.raises(InputError, match="not a ConformanceReport"):
        load_report(path)
    path.write_text(json.dumps({"apiVersion": API_VERSION, "kind": KIND}))
    with pytest.raises(InputError, match="malformed"):
        load_report(path)
    path.write_text("[1, 2]")
    with pytest.raises(InputError, match="mapping"):
        load_report(path)


def test_junit_xml(tmp_path: Path) -> None:
    report = build(
        [
            result("a.ok"),
            result("a.bad", "failed", reason="it broke"),
            result("a.err", "error", reason="crash"),
            result("a.skip", "skipped", reason="no feature"),
            result("a.dev", "failed", reason="as always", known_deviation="documented"),
        ]
    )
    root = ET.fromstring(write_junit(report, tmp_path / "junit.xml").read_text())
    assert root.tag == "testsuite"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("5", "1", "1")
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert cases["a.bad"].find("failure").get("message") == "it broke"  # type: ignore[union-attr]
    assert cases["a.err"].find("error") is not None
    assert "known deviation" in cases["a.dev"].find("skipped").get("message")  # type: ignore[union-attr,operator]
    assert cases["a.ok"].find("failure") is None
    assert junit_xml(report).startswith('<?xml version="1.0"')


def test_summary_table_and_json_text() -> None:
    report = build([result("a.ok"), result("a.bad", "failed", reason="x" * 300)])
    text = summary_table(report, width=80)
    assert "a.bad" in text
    assert "FAIL" in text
    assert "FAILED" in text
    assert all(len(line) <= 80 for line in text.splitlines()[2:-4])
    assert json.loads(report_json(report))["result"] == "failed"
