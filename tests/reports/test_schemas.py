"""The report contracts: every report the writers produce validates; broken ones do not."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from dynconform.contracts import Catalog, Validator
from dynconform.reports import (
    ConformanceReport,
    StabilityReport,
    report_json,
    report_yaml,
)

VALIDATOR = Validator()
CONFORMANCE, STABILITY = "report.conformance", "report.stability"


def _rules(contract: str, data: Any) -> set[str]:
    return {v.rule for v in VALIDATOR.validate(contract, data).violations}


def test_contracts_are_in_the_report_family() -> None:
    catalog = Catalog.load()
    for name in (CONFORMANCE, STABILITY):
        contract = catalog.get(name)
        assert contract.family == "report"
        assert contract.schema_id == f"https://dynconform.dev/schemas/report/{name}.v1.json"
        assert contract.backed_by == ()


def test_the_real_run_validates_as_written(run_report: ConformanceReport) -> None:
    assert _rules(CONFORMANCE, json.loads(report_json(run_report))) == set()
    assert _rules(CONFORMANCE, yaml.safe_load(report_yaml(run_report))) == set()


def test_the_published_stability_report_validates(published: StabilityReport) -> None:
    assert _rules(STABILITY, json.loads(report_json(published))) == set()


Mutant = Callable[[dict[str, Any]], None]


def _parent(data: dict[str, Any], path: str) -> tuple[Any, Any]:
    """The container of what ``a/0/b`` points at, and its key (an index in a list)."""
    *head, last = path.split("/")
    target: Any = data
    for key in head:
        target = target[int(key)] if isinstance(target, list) else target[key]
    return target, int(last) if isinstance(target, list) else last


def _set(path: str, value: Any) -> Mutant:
    def apply(data: dict[str, Any]) -> None:
        target, key = _parent(data, path)
        target[key] = value

    return apply


def _drop(path: str) -> Mutant:
    def apply(data: dict[str, Any]) -> None:
        target, key = _parent(data, path)
        del target[key]

    return apply


def _duplicate_first_check(data: dict[str, Any]) -> None:
    data["checks"].append(copy.deepcopy(data["checks"][0]))


def _flip_measurement(data: dict[str, Any]) -> None:
    series = next(iter(data["measurements"].values()))
    series["p50"], series["max"] = series["max"] + 5, series["p50"]


CONFORMANCE_MUTANTS: dict[str, tuple[Mutant, str]] = {
    "kind": (_set("kind", "StabilityReport"), "schema.const"),
    "no-checks": (_drop("checks"), "schema.required"),
    "status": (_set("checks/0/status", "flaky"), "schema.enum"),
    "extra": (_set("statistics/bonus", 1), "schema.additionalProperties"),
    "duration": (_set("checks/0/durationSeconds", -1), "schema.minimum"),
    "passed-count": (_set("statistics/passed", 99), "report.statistics-match-checks"),
    "result": (_set("result", "passed"), "report.result-matches-checks"),
    "duplicate": (_duplicate_first_check, "report.check-ids-unique"),
    "profile": (_set("profiles/0/core/result", "success"), "report.profiles-match-checks"),
    "latency": (_flip_measurement, "report.measurements-ordered"),
    "unit": (_set("measurements/http.chat.total/unit", "s"), "schema.const"),
}


@pytest.mark.parametrize("name", CONFORMANCE_MUTANTS)
def test_conformance_mutants_fail(name: str, run_report: ConformanceReport) -> None:
    data = json.loads(report_json(run_report))
    mutate, rule = CONFORMANCE_MUTANTS[name]
    mutate(data)
    assert rule in _rules(CONFORMANCE, data)


def _first_failing_step(data: dict[str, Any]) -> int:
    return next(i for i, s in enumerate(data["steps"]) if s["result"] == "fail")


def _unchain(data: dict[str, Any]) -> None:
    data["steps"][1]["fromVersion"] = "0.9.9"


def _count_off(data: dict[str, Any]) -> None:
    data["steps"][_first_failing_step(data)]["counts"]["stable"]["violation"] += 1


def _pass_failing_step(data: dict[str, Any]) -> None:
    data["steps"][_first_failing_step(data)]["result"] = "pass"


def _forgive_violation(data: dict[str, Any]) -> None:
    step = data["steps"][_first_failing_step(data)]
    finding = next(f for f in step["findings"] if f["verdict"] == "violation")
    finding["verdict"] = "info"


def _waive_without_reason(data: dict[str, Any]) -> None:
    step = data["steps"][_first_failing_step(data)]
    finding = next(f for f in step["findings"] if f["verdict"] == "violation")
    finding["verdict"] = "waived"


def _removal_not_breaking(data: dict[str, Any]) -> None:
    step = data["steps"][_first_failing_step(data)]
    finding = next(f for f in step["findings"] if f["change"] == "removed")
    finding["breaking"] = False


STABILITY_MUTANTS: dict[str, tuple[Mutant, str]] = {
    "no-steps": (_drop("steps"), "schema.required"),
    "change": (_set("steps/2/findings/0/change", "mutated"), "schema.enum"),
    "tier-counts": (_drop("counts/stable"), "schema.required"),
    "chain": (_unchain, "report.stability.steps-chain"),
    "counts": (_count_off, "report.stability.counts-match-findings"),
    "step-result": (_pass_failing_step, "report.stability.result-matches-steps"),
    "report-result": (_set("result", "pass"), "report.stability.result-matches-steps"),
    "verdict": (_forgive_violation, "report.stability.verdict-matches-change"),
    "waiver": (_waive_without_reason, "report.stability.verdict-matches-change"),
    "removal": (_removal_not_breaking, "report.stability.verdict-matches-change"),
}


@pytest.mark.parametrize("name", STABILITY_MUTANTS)
def test_stability_mutants_fail(name: str, published: StabilityReport) -> None:
    # four steps keep each validation fast; they include the failing 1.0.2 -> 1.1.0
    data = published.to_dict()
    data["steps"] = data["steps"][:4]
    data["toVersion"] = data["steps"][-1]["toVersion"]
    data["counts"] = StabilityReport.from_dict(data).to_dict()["counts"]
    assert _rules(STABILITY, data) == set()
    mutate, rule = STABILITY_MUTANTS[name]
    mutate(data)
    assert rule in _rules(STABILITY, data)
