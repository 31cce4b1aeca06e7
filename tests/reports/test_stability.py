"""The StabilityReport kind: model, serialisation, and its construction from API history."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from reports_helpers import Index

from dynconform.contracts import InputError
from dynconform.reports import (
    API_VERSION,
    STABILITY_KIND,
    StabilityReport,
    TierCounts,
    load_report,
    report_json,
    report_yaml,
    write_report,
)
from dynconform.stability import (
    Governance,
    judge_surfaces,
    parse_waivers,
    snapshot_surfaces,
    stability_history,
    stability_report,
)


@pytest.fixture(scope="module")
def history(pkgx_index: Index) -> StabilityReport:
    waivers = parse_waivers(
        {"waivers": [{"path": "pkgx.waived", "reason": "moved to pkgx.extra, see #12"}]}, "w"
    )
    governance = Governance(waivers=tuple(waivers))
    with pkgx_index.hermetic():
        return stability_history(
            "pkgx", "1.0", "2.0", options=pkgx_index.options, governance=governance
        )


def test_history_becomes_a_stability_report(history: StabilityReport) -> None:
    report = history
    assert (report.package, report.from_version, report.to_version) == ("pkgx", "1.0", "2.0")
    assert [(s.from_version, s.to_version) for s in report.steps] == [
        ("1.0", "1.1"),
        ("1.1", "2.0"),
    ]
    first, second = report.steps
    assert [(f.change, f.verdict, f.path) for f in first.findings] == [
        ("added", "info", "pkgx.extra")
    ]
    by_path = {f.display_path: f for f in second.findings}
    assert by_path["pkgx.gone"].change == "removed"
    assert by_path["pkgx.gone"].verdict == "violation"
    assert by_path["pkgx.waived"].verdict == "waived"
    assert by_path["pkgx.waived"].waiver_reason == "moved to pkgx.extra, see #12"
    # deprecated since 1.0, removed in 2.0: two releases, enough for stable
    assert by_path["pkgx.old_api"].verdict == "allowed"
    assert by_path["pkgx.keep(b)"].change == "breaking"
    assert by_path["pkgx.keep(c)"].change == "changed"
    assert by_path["pkgx.fresh"].change == "added"
    assert not report.passed
    assert first.passed
    assert not second.passed
    stable = report.counts["stable"]
    assert (stable.removed, stable.violation, stable.waived, stable.allowed) == (3, 2, 1, 1)
    assert [w.state for w in second.waivers] == ["used"]
    assert report.tiers_origin == "defaults"
    assert report.deprecation_releases["stable"] == 2


def test_unknown_release_and_order_are_input_errors(pkgx_index: Index) -> None:
    with pkgx_index.hermetic(), pytest.raises(InputError, match=r"has no release 9\.9"):
        stability_history("pkgx", "1.0", "9.9", options=pkgx_index.options)
    with pytest.raises(InputError, match="earlier release"):
        stability_history("pkgx", "2.0", "1.0", options=pkgx_index.options)


def test_round_trip_through_json_and_yaml(published: StabilityReport, tmp_path: Path) -> None:
    part = dataclasses.replace(published, steps=published.steps[:3], to_version="1.1.0")
    json_path, yaml_path = write_report(part, tmp_path, "stability")
    for path in (json_path, yaml_path):
        again = load_report(path)
        assert isinstance(again, StabilityReport)
        assert again.to_dict() == part.to_dict()
    data = json.loads(json_path.read_text(encoding="utf-8"))
    assert (data["apiVersion"], data["kind"]) == (API_VERSION, STABILITY_KIND)
    assert "fromVersion" in data["steps"][0]
    # a finding's optional keys are left out when empty: no waiver, no reason
    findings = [f for step in data["steps"] for f in step["findings"]]
    assert findings
    assert not any("waiverReason" in f for f in findings)
    assert any("reason" not in f for f in findings)


def test_counts_are_the_sum_of_the_steps(published: StabilityReport) -> None:
    total = TierCounts()
    for step in published.steps:
        for counts in step.counts.values():
            total = total + counts
    summed = TierCounts()
    for counts in published.counts.values():
        summed = summed + counts
    assert total == summed == TierCounts.of(published.findings)
    assert summed.violation == len(published.violations) > 0
    assert summed.added + summed.deprecated + summed.removed + summed.changed + summed.breaking == (
        len(published.findings)
    )


def test_published_report_covers_the_released_range(published: StabilityReport) -> None:
    versions = [published.steps[0].from_version] + [s.to_version for s in published.steps]
    assert versions[0] == "1.0.0"
    assert versions[-1] == "1.6.1"
    assert "1.5.1" in versions
    assert not any("dev" in v for v in versions)
    failing = {(s.from_version, s.to_version) for s in published.steps if not s.passed}
    assert ("1.5.1", "1.6.0") in failing


def test_load_rejects_malformed_stability_reports(
    published: StabilityReport, tmp_path: Path
) -> None:
    path = tmp_path / "r.json"
    data = published.to_dict()
    data["steps"][0]["findings"] = [
        {"kind": "x", "path": "p", "tier": "stable", "change": "odd", "verdict": "info"}
    ]
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match="unknown change 'odd'"):
        load_report(path)
    path.write_text(json.dumps({"apiVersion": API_VERSION, "kind": STABILITY_KIND}))
    with pytest.raises(InputError, match="malformed StabilityReport"):
        load_report(path)
    path.write_text(json.dumps({"apiVersion": API_VERSION, "kind": "Nope"}))
    with pytest.raises(InputError, match="kind 'Nope'"):
        load_report(path)


def test_empty_comparison_list_gives_an_empty_passing_report() -> None:
    empty = stability_report([], package="empty", date="2026-01-01T00:00:00+00:00")
    assert empty.steps == ()
    assert empty.passed
    assert json.loads(report_json(empty))["result"] == "pass"
    assert "steps: []" in report_yaml(empty)


def test_surface_comparisons_join_the_report(tmp_path: Path) -> None:
    real = Path(__file__).parents[1] / "fixtures" / "surfaces" / "ai-dynamo-1.6.1-cli.json"
    data = json.loads(real.read_text(encoding="utf-8"))
    flags = data["cli"]["dynamo.frontend"]
    flag = next(name for name, opt in sorted(flags.items()) if opt["tier"] == "stable")
    del flags[flag]
    data["version"] = "1.6.2"
    changed = tmp_path / "next.json"
    changed.write_text(json.dumps(data), encoding="utf-8")
    surfaces = judge_surfaces(snapshot_surfaces(str(real)), snapshot_surfaces(str(changed)))
    report = stability_report([], surfaces=[surfaces], package="ai-dynamo")
    (step,) = report.steps
    assert (step.from_version, step.to_version, step.compared) == ("1.6.1", "1.6.2", ("surfaces",))
    (finding,) = step.findings
    assert finding.path == f"cli:dynamo.frontend:{flag}"
    assert (finding.domain, finding.change, finding.verdict) == ("surface", "removed", "violation")
    assert not report.passed
