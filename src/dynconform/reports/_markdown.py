"""Markdown for pull-request comments and ``$GITHUB_STEP_SUMMARY``: the verdict first, then
what needs attention, then compact tables. Secrets are redacted and all text that came from
the system under test is escaped."""

from __future__ import annotations

from collections.abc import Sequence

from dynconform.reports._io import Report, redacted
from dynconform.reports._model import CheckResult, ConformanceReport, ProfileOutcome
from dynconform.reports._stability import (
    CHANGES,
    TIERS,
    StabilityFinding,
    StabilityReport,
    StabilityStep,
    TierCounts,
)
from dynconform.reports._tap import TapReport
from dynconform.reports._text import code_block, escape_markdown, truncate

__all__ = ["markdown"]

#: GitHub refuses comments longer than this; the writers stay well below it
COMMENT_LIMIT = 65536
_REASON = 400


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _md(text: str, limit: int = _REASON) -> str:
    return escape_markdown(truncate(text, limit))


def markdown(report: Report, *, limit: int = 20) -> str:
    """The report as GitHub-flavoured Markdown; at most ``limit`` items per list."""
    clean = redacted(report)
    if isinstance(clean, StabilityReport):
        return _stability(clean, limit)
    if isinstance(clean, TapReport):
        return _tap(clean, limit)
    return _conformance(clean, limit)


def _tap(report: TapReport, limit: int) -> str:
    verdict = "PASSED" if report.passed else "FAILED"
    lines = [
        f"## dynconform tap: {verdict}",
        "",
        f"{report.events} events and {report.record_puts + report.record_deletes} discovery "
        f"records in {report.seconds:.1f} s (stopped: {_md(report.stopped, 40)}), "
        f"{report.violation_count} violations",
    ]
    if report.violations_by_rule:
        lines += ["", "| Rule | Violations |", "|---|---:|"]
        for rule, count in sorted(report.violations_by_rule.items(), key=lambda x: -x[1]):
            lines.append(f"| {_md(rule, 120)} | {count} |")
    if report.violations:
        lines += ["", "| Source | Contract | Rule | Where | Message |", "|---|---|---|---|---|"]
        for v in report.violations[:limit]:
            lines.append(
                f"| {_md(v.source, 40)} | {_md(v.contract, 60)} | {_md(v.rule, 80)} "
                f"| {_md(v.where or v.pointer, 120)} | {_md(v.message, 200)} |"
            )
    for note in report.notes[:limit]:
        lines.append(f"- {_md(note)}")
    lines += [
        "",
        f"<sub>dynconform {_md(report.dynconform_version, 40)}, {_md(report.date, 40)}</sub>",
    ]
    return "\n".join(lines) + "\n"


# -- conformance --------------------------------------------------------------------------------


def _outcome(outcome: ProfileOutcome) -> str:
    stats = outcome.statistics
    if stats.total == 0:
        return "-"
    return f"{outcome.result} ({stats.passed}/{stats.total})"


def _failure(check: CheckResult) -> list[str]:
    label = check.status if check.severity == "required" else f"{check.status}, recommended"
    lines = [f"- **{_md(check.id, 120)}** ({label}): {_md(check.reason) or 'no reason given'}"]
    for violation in check.violations[:1]:
        where = " ".join(
            str(violation.get(k, "")) for k in ("contract", "rule", "pointer") if violation.get(k)
        )
        lines.append(f"  first violation: {_md(where, 160)}: {_md(str(violation.get('message')))}")
    if check.reproduce:
        lines += ["", *("  " + ln for ln in code_block(check.reproduce, "sh").splitlines()), ""]
    return lines


def _conformance(report: ConformanceReport, limit: int) -> str:
    impl = report.implementation
    stats = report.statistics
    verdict = "PASSED" if report.passed else "FAILED"
    lines = [
        f"## dynconform conformance: {verdict}",
        "",
        f"**{_md(impl.name, 80)} {_md(impl.version, 40)}**, backend {_md(impl.backend, 40)}, "
        f"topology {_md(impl.topology, 40)}, seed {report.seed}: {stats.total} checks, "
        f"{stats.passed} passed, {stats.failed} failed, {stats.error} errors, "
        f"{stats.skipped} skipped, {stats.known_deviations} known deviations "
        f"in {report.duration:.1f} s",
    ]
    failing = [c for c in report.checks if c.status in ("failed", "error")]
    blocking = [c for c in failing if c.known_deviation is None]
    deviations = [c for c in failing if c.known_deviation is not None]
    if blocking:
        lines += ["", f"### Failures ({len(blocking)})", ""]
        blocking.sort(key=lambda c: (not c.blocking, c.id))
        for check in blocking[:limit]:
            lines += _failure(check)
        if len(blocking) > limit:
            lines.append(f"- ... {len(blocking) - limit} more (see the JSON report)")
    if deviations:
        lines += ["", f"<details><summary>Known deviations ({len(deviations)})</summary>", ""]
        for check in deviations[:limit]:
            lines.append(
                f"- **{_md(check.id, 120)}**: {_md(check.known_deviation or '')}"
                f" ({_md(check.reason, 160)})"
            )
        if len(deviations) > limit:
            lines.append(f"- ... {len(deviations) - limit} more")
        lines += ["", "</details>"]
    if report.profiles:
        lines += [
            "",
            "| Profile | Core | Extended | Unsupported features |",
            "|---|---|---|---|",
        ]
        for p in report.profiles:
            unsupported = ", ".join(_md(f, 60) for f in p.unsupported_features) or "-"
            lines.append(
                f"| {_md(p.name, 60)} | {_outcome(p.core)} | {_outcome(p.extended)} "
                f"| {unsupported} |"
            )
    if report.measurements:
        lines += [
            "",
            "| Latency (ms) | Count | p50 | p90 | p99 | Max |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for name in sorted(report.measurements):
            m = report.measurements[name]
            pct = [m.percentiles.get(p) for p in (50, 90, 99)]
            cells = " | ".join("-" if v is None else f"{v:.1f}" for v in pct)
            lines.append(f"| {_md(name, 80)} | {m.count} | {cells} | {m.max:.1f} |")
    lines += [
        "",
        f"<sub>dynconform {_md(report.dynconform_version, 40)}, {_md(report.date, 40)}"
        + (f", expectations {_md(report.expectations, 120)}" if report.expectations else "")
        + "</sub>",
    ]
    return "\n".join(lines) + "\n"


# -- stability ----------------------------------------------------------------------------------

#: tiers whose removals are listed (the others promise nothing)
_PROMISED = ("stable", "beta")
_STEP_COLUMNS = ("added", "deprecated", "removed", "breaking", "violation", "waived")
_TIER_COLUMNS = (*_STEP_COLUMNS, "reported")
_TIER_HEAD = [
    "| Tier | Added | Deprecated | Removed | Incompatible | Violations | Waived | Reported |",
    "|---|---:|---:|---:|---:|---:|---:|---:|",
]


def _count_cells(counts: TierCounts, columns: Sequence[str] = _STEP_COLUMNS) -> str:
    return " | ".join(str(getattr(counts, c)) for c in columns)


def _finding_row(f: StabilityFinding) -> str:
    why = f.waiver_reason if f.verdict == "waived" and f.waiver_reason else f.reason
    where = _md(f.location or "", 80)
    return (
        f"| {f.verdict} | {f.tier} | {_md(f.kind, 40)} | {_md(f.display_path, 120)} "
        f"| {_md(f.message, 160)} | {_md(why, 160)} | {where} |"
    )


def _step_section(step: StabilityStep, limit: int) -> list[str]:
    counts = step.counts
    total = TierCounts.of(step.findings)
    verdict = "pass" if step.passed else "FAIL"
    judged = f", {total.violation} violations" if total.violation else ""
    summary = (
        f"{_md(step.from_version, 40)} -> {_md(step.to_version, 40)}: {verdict}{judged} "
        f"({total.added} added, {total.deprecated} deprecated, {total.removed} removed, "
        f"{total.breaking} incompatible)"
    )
    lines = ["", f"<details><summary>{summary}</summary>", ""]
    lines += _TIER_HEAD
    for tier, c in counts.items():
        if not c.empty:
            cells = _count_cells(c, _TIER_COLUMNS)
            lines.append(f"| {_md(tier, 40)} | {cells} |")
    tiers = {t: i for i, t in enumerate(TIERS)}

    def order(f: StabilityFinding) -> tuple[int, int, str]:
        return (tiers.get(f.tier, 9), CHANGES.index(f.change), f.path)

    # violations, then waived changes, then the rest worth a reader's look: each group is
    # listed up to ``limit`` rows, so that many violations never hide a waiver
    groups = [
        [f for f in step.findings if f.verdict == "violation"],
        [f for f in step.findings if f.verdict == "waived"],
        [
            f
            for f in step.findings
            if f.verdict in ("allowed", "warning")
            or (
                f.verdict not in ("violation", "waived")
                and (f.change == "deprecated" or (f.change == "removed" and f.tier in _PROMISED))
            )
        ],
    ]
    if any(groups):
        lines += [
            "",
            "| Verdict | Tier | Kind | Object | Change | Reason or waiver | Location |",
            "|---|---|---|---|---|---|---|",
        ]
        for group in groups:
            group.sort(key=order)
            lines += [_finding_row(f) for f in group[:limit]]
            if len(group) > limit:
                more = f"{len(group) - limit} more {group[0].verdict}"
                lines.append(f"| ... | | | {more} (see the JSON report) | | | |")
    for w in step.waivers:
        if w.state != "used":
            lines.append(f"- waiver {_md(w.path, 120)}: {w.state} ({_md(w.reason, 160)})")
    lines += ["", "</details>"]
    return lines


def _stability(report: StabilityReport, limit: int) -> str:
    total = TierCounts.of(report.findings)
    verdict = "PASS" if report.passed else "FAIL"
    periods = ", ".join(
        f"{_md(t, 20)} {'none' if n is None else n}" for t, n in report.deprecation_releases.items()
    )
    failing = [s for s in report.steps if not s.passed]
    lines = [
        f"## API stability of {_md(report.package, 80)} {_md(report.from_version, 40)} -> "
        f"{_md(report.to_version, 40)}: {verdict}",
        "",
        f"{_plural(len(report.steps), 'release step')}, {len(report.findings)} changes: "
        f"{total.violation} policy violations in {_plural(len(failing), 'step')}, "
        f"{total.allowed} allowed after deprecation, {total.waived} waived, "
        f"{total.reported} reported (tiers without a promise). "
        f"Tiers: {_md(report.tiers_origin, 200)}; "
        f"deprecation period in releases: {periods or 'defaults'}.",
        "",
        *_TIER_HEAD,
    ]
    for tier, c in report.counts.items():
        lines.append(f"| {_md(tier, 40)} | {_count_cells(c, _TIER_COLUMNS)} |")
    lines += [
        "",
        "| Release step | Verdict | Added | Deprecated | Removed | Incompatible | Violations "
        "| Waived |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for step in report.steps:
        c = TierCounts.of(step.findings)
        lines.append(
            f"| {_md(step.from_version, 40)} -> {_md(step.to_version, 40)} "
            f"| {'pass' if step.passed else 'FAIL'} | {_count_cells(c)} |"
        )
    per_step = max(3, min(limit, (COMMENT_LIMIT // 2) // max(1, len(report.steps)) // 300))
    for step in report.steps:
        if step.findings or step.waivers:
            lines += _step_section(step, per_step)
    lines += [
        "",
        f"<sub>dynconform {_md(report.dynconform_version, 40)}, {_md(report.date, 40)}; "
        "Removed and Incompatible changes break users; Violations are those the tier policy "
        "fails. Per step, every judged change, deprecation and stable or beta removal is "
        "listed; additions are counted</sub>",
    ]
    return "\n".join(lines) + "\n"
