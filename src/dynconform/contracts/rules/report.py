"""Semantic rules of dynconform's own reports: totals, verdicts and versions that agree.

A report is a summary plus its details; these rules check that a consumer reading only the
summary (``result``, ``statistics``, ``counts``) learns the same as one reading every check
or finding, which a JSON Schema cannot express.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from dynconform.contracts._rules import Issue, Rule, record_rule

_STATUSES = ("passed", "failed", "skipped", "error")


def _blocking(check: Mapping[str, Any]) -> bool:
    return (
        check["status"] in ("failed", "error")
        and check["severity"] == "required"
        and "knownDeviation" not in check
    )


def _statistics(checks: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    counts = Counter(c["status"] for c in checks)
    out = {s: counts[s] for s in _STATUSES}
    out["total"] = len(checks)
    out["knownDeviations"] = sum(
        1 for c in checks if "knownDeviation" in c and c["status"] != "passed"
    )
    return out


def _mismatches(stated: Mapping[str, Any], expected: Mapping[str, int]) -> list[str]:
    return [
        f"{k} is {stated.get(k)}, the checks give {v}"
        for k, v in expected.items()
        if stated.get(k) != v
    ]


@record_rule(
    "report.statistics-match-checks",
    contract="report.conformance",
    summary="`statistics` counts the checks by status, and the known deviations, exactly.",
)
def _statistics_match(report: dict[str, Any]) -> Iterator[Issue]:
    wrong = _mismatches(report["statistics"], _statistics(report["checks"]))
    if wrong:
        yield "/statistics", "; ".join(wrong)


@record_rule(
    "report.result-matches-checks",
    contract="report.conformance",
    summary="`result` is `failed` exactly when a required check failed or errored and is not "
    "a known deviation.",
)
def _result_matches(report: dict[str, Any]) -> Iterator[Issue]:
    blocking = [c["id"] for c in report["checks"] if _blocking(c)]
    expected = "failed" if blocking else "passed"
    if report["result"] != expected:
        why = f"blocking: {', '.join(blocking[:5])}" if blocking else "no check blocks"
        yield "/result", f"result is {report['result']!r}, expected {expected!r} ({why})"


@record_rule(
    "report.check-ids-unique",
    contract="report.conformance",
    summary="Each check appears once.",
)
def _ids_unique(report: dict[str, Any]) -> Iterator[Issue]:
    seen: set[str] = set()
    for i, check in enumerate(report["checks"]):
        if check["id"] in seen:
            yield f"/checks/{i}/id", f"check {check['id']!r} appears more than once"
        seen.add(check["id"])


def _outcome(checks: Sequence[Mapping[str, Any]]) -> str:
    if any(_blocking(c) for c in checks):
        return "failure"
    return "success" if all(c["status"] == "passed" for c in checks) else "partial"


@record_rule(
    "report.profiles-match-checks",
    contract="report.conformance",
    summary="Each profile level's result, statistics and failed/skipped lists follow from the "
    "checks of that profile and level.",
)
def _profiles_match(report: dict[str, Any]) -> Iterator[Issue]:
    for i, profile in enumerate(report["profiles"]):
        for level in ("core", "extended"):
            mine = [
                c
                for c in report["checks"]
                if profile["name"] in c["profiles"] and c["level"] == level
            ]
            stated = profile[level]
            where = f"/profiles/{i}/{level}"
            outcome = _outcome(mine)
            if stated["result"] != outcome:
                yield (
                    f"{where}/result",
                    f"{profile['name']} {level} is {stated['result']!r}, its checks give "
                    f"{outcome!r}",
                )
            wrong = _mismatches(stated["statistics"], _statistics(mine))
            if wrong:
                yield f"{where}/statistics", f"{profile['name']} {level}: " + "; ".join(wrong)
            failed = [c["id"] for c in mine if c["status"] in ("failed", "error")]
            skipped = [c["id"] for c in mine if c["status"] == "skipped"]
            if stated["failedChecks"] != failed or stated["skippedChecks"] != skipped:
                yield (
                    where,
                    f"{profile['name']} {level}: failedChecks/skippedChecks do not list its checks",
                )


@record_rule(
    "report.measurements-ordered",
    contract="report.conformance",
    summary="Each latency series has min <= p50 <= p90 <= p99 <= max and min <= mean <= max.",
)
def _measurements_ordered(report: dict[str, Any]) -> Iterator[Issue]:
    for name, m in (report.get("measurements") or {}).items():
        pct = sorted((int(k[1:]), v) for k, v in m.items() if k[:1] == "p" and k[1:].isdigit())
        chain = [("min", m["min"]), *((f"p{p}", v) for p, v in pct), ("max", m["max"])]
        for (a, x), (b, y) in itertools.pairwise(chain):
            if x > y:
                yield f"/measurements/{name}/{b}", f"{name}: {a} {x} is above {b} {y}"
        if not m["min"] <= m["mean"] <= m["max"]:
            yield f"/measurements/{name}/mean", f"{name}: mean {m['mean']} is outside [min, max]"


# -- stability ----------------------------------------------------------------------------------

_TIER_KEYS = (
    "added",
    "deprecated",
    "removed",
    "changed",
    "breaking",
    "violation",
    "allowed",
    "waived",
    "reported",
    "warning",
)
_BREAKING_VERDICTS = frozenset({"violation", "allowed", "waived", "reported"})


def _tier_counts(
    findings: Sequence[Mapping[str, Any]], tiers: Sequence[str]
) -> dict[str, dict[str, int]]:
    out = {t: dict.fromkeys(_TIER_KEYS, 0) for t in tiers}
    for f in findings:
        row = out.setdefault(f["tier"], dict.fromkeys(_TIER_KEYS, 0))
        row[f["change"]] += 1
        if f["verdict"] in row:
            row[f["verdict"]] += 1
    return out


@record_rule(
    "report.stability.counts-match-findings",
    contract="report.stability",
    summary="Each step's `counts` count its findings by tier, change and verdict; the "
    "report's `counts` are the sum over its steps.",
)
def _counts_match(report: dict[str, Any]) -> Iterator[Issue]:
    everything: list[Mapping[str, Any]] = []
    for i, step in enumerate(report["steps"]):
        everything += step["findings"]
        expected = _tier_counts(step["findings"], list(step["counts"]))
        if step["counts"] != expected:
            yield (
                f"/steps/{i}/counts",
                (f"{step['fromVersion']} -> {step['toVersion']}: counts do not match its findings"),
            )
    if report["counts"] != _tier_counts(everything, list(report["counts"])):
        yield "/counts", "counts are not the sum of the steps' findings"


@record_rule(
    "report.stability.result-matches-steps",
    contract="report.stability",
    summary="A step fails exactly when a finding is a violation or a waiver expired; the "
    "report fails exactly when a step fails.",
)
def _result_matches_steps(report: dict[str, Any]) -> Iterator[Issue]:
    failing = 0
    for i, step in enumerate(report["steps"]):
        bad = any(f["verdict"] == "violation" for f in step["findings"]) or any(
            w["state"] == "expired" for w in step["waivers"]
        )
        failing += bad
        if step["result"] != ("fail" if bad else "pass"):
            yield (
                f"/steps/{i}/result",
                (
                    f"{step['fromVersion']} -> {step['toVersion']} is {step['result']!r} but has "
                    + ("a violation or an expired waiver" if bad else "no violation")
                ),
            )
    if report["result"] != ("fail" if failing else "pass"):
        yield "/result", f"result is {report['result']!r} with {failing} failing step(s)"


@record_rule(
    "report.stability.steps-chain",
    contract="report.stability",
    summary="Steps run from `fromVersion` to `toVersion`, each starting where the one before "
    "ended.",
)
def _steps_chain(report: dict[str, Any]) -> Iterator[Issue]:
    steps = report["steps"]
    if not steps:
        return
    first, start = steps[0]["fromVersion"], report["fromVersion"]
    if first != start:
        yield "/steps/0/fromVersion", f"first step starts at {first}, the report at {start}"
    if steps[-1]["toVersion"] != report["toVersion"]:
        yield (
            f"/steps/{len(steps) - 1}/toVersion",
            (f"last step ends at {steps[-1]['toVersion']}, the report at {report['toVersion']}"),
        )
    for i, (a, b) in enumerate(itertools.pairwise(steps), start=1):
        if a["toVersion"] != b["fromVersion"]:
            yield (
                f"/steps/{i}/fromVersion",
                (f"step starts at {b['fromVersion']}, the step before ended at {a['toVersion']}"),
            )


@record_rule(
    "report.stability.verdict-matches-change",
    contract="report.stability",
    summary="Breaking findings get a breaking verdict (violation, allowed, waived, reported), "
    "others info or warning; removals are breaking; waived findings name the waiver's reason.",
)
def _verdict_matches(report: dict[str, Any]) -> Iterator[Issue]:
    for i, step in enumerate(report["steps"]):
        for j, f in enumerate(step["findings"]):
            where = f"/steps/{i}/findings/{j}"
            if f["breaking"] != (f["verdict"] in _BREAKING_VERDICTS):
                yield (
                    f"{where}/verdict",
                    (
                        f"{f['path']}: verdict {f['verdict']!r} for a "
                        + ("breaking" if f["breaking"] else "compatible")
                        + " change"
                    ),
                )
            if f["change"] in ("removed", "breaking") and not f["breaking"]:
                yield f"{where}/breaking", f"{f['path']}: a {f['change']} change is breaking"
            if f["change"] in ("added", "deprecated", "changed") and f["breaking"]:
                yield f"{where}/breaking", f"{f['path']}: an {f['change']} change is not breaking"
            if f["verdict"] == "waived" and not f.get("waiverReason"):
                yield where, f"{f['path']}: waived without a waiverReason"


RULES: tuple[Rule, ...] = (
    _statistics_match,
    _result_matches,
    _ids_unique,
    _profiles_match,
    _measurements_ordered,
    _counts_match,
    _result_matches_steps,
    _steps_chain,
    _verdict_matches,
)
