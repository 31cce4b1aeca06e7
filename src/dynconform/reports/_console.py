"""The terminal rendering of each report kind with rich.

:func:`dynconform.reports.terminal` imports this module on first use, so that importing
:mod:`dynconform.reports` (the conformance runner and its pytest plugin do) does not load rich.
"""

from __future__ import annotations

import io

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from dynconform.reports._io import Report
from dynconform.reports._model import ConformanceReport, ProfileOutcome
from dynconform.reports._stability import StabilityReport, TierCounts
from dynconform.reports._tap import TapReport
from dynconform.reports._terminal import implementation_line, totals_line
from dynconform.reports._text import one_line, truncate

__all__ = ["render_terminal"]

_STATUS_STYLE = {
    "passed": "green",
    "failed": "bold red",
    "error": "bold red",
    "skipped": "yellow",
    "xfail": "magenta",
    "violation": "bold red",
    "waived": "cyan",
    "allowed": "green",
    "warning": "yellow",
}


def _t(text: str, style: str = "", limit: int = 300) -> Text:
    return Text(truncate(one_line(text), limit), style=style)


def render_terminal(
    report: Report, *, color: bool, width: int, all_checks: bool, limit: int
) -> str:
    """``report`` (already redacted) as :func:`dynconform.reports.terminal` writes it."""
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        force_terminal=color,
        no_color=not color,
        color_system="standard" if color else None,
        width=width,
        highlight=False,
        emoji=False,
        soft_wrap=False,
    )
    if isinstance(report, StabilityReport):
        _stability(console, report, limit)
    elif isinstance(report, TapReport):
        _tap(console, report, limit)
    else:
        _conformance(console, report, all_checks, limit)
    return buffer.getvalue()


def _table(*columns: str, right: tuple[str, ...] = ()) -> Table:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for name in columns:
        table.add_column(name, justify="right" if name in right else "left", overflow="fold")
    return table


def _outcome(outcome: ProfileOutcome) -> Text:
    if outcome.statistics.total == 0:
        return Text("-")
    style = {"success": "green", "partial": "yellow", "failure": "bold red"}[outcome.result]
    return Text(f"{outcome.result} ({outcome.statistics.passed}/{outcome.statistics.total})", style)


def _conformance(console: Console, report: ConformanceReport, all_checks: bool, limit: int) -> None:
    console.print(_t(implementation_line(report), "bold"))
    shown = [c for c in report.checks if all_checks or c.status != "passed"]
    if shown:
        table = _table("check", "status", "seconds", "reason", right=("seconds",))
        for check in shown[: len(shown) if all_checks else limit]:
            deviation = check.known_deviation is not None and check.status != "passed"
            status = "xfail" if deviation else check.status
            reason = f"known deviation: {check.known_deviation}" if deviation else check.reason
            table.add_row(
                _t(check.id, limit=80),
                Text(status.upper(), _STATUS_STYLE.get(status, "")),
                f"{check.duration:.2f}",
                _t(reason, limit=240),
            )
        console.print(table)
        if not all_checks and len(shown) > limit:
            console.print(f"... {len(shown) - limit} more")
    profiles = _table("profile", "core", "extended", "unsupported features")
    for p in report.profiles:
        profiles.add_row(
            _t(p.name), _outcome(p.core), _outcome(p.extended),
            _t(", ".join(p.unsupported_features) or "-"),
        )  # fmt: skip
    console.print(profiles)
    if report.measurements:
        lat = _table(
            "latency (ms)",
            "count",
            "p50",
            "p90",
            "p99",
            "max",
            right=("count", "p50", "p90", "p99", "max"),
        )
        for name, m in sorted(report.measurements.items()):
            cells = [
                "-" if m.percentiles.get(p) is None else f"{m.percentiles[p]:.1f}"
                for p in (50, 90, 99)
            ]
            lat.add_row(_t(name), str(m.count), *cells, f"{m.max:.1f}")
        console.print(lat)
    verdict = Text(
        "PASSED" if report.passed else "FAILED", "bold green" if report.passed else "bold red"
    )
    console.print(Text(totals_line(report)) + verdict)


_COLUMNS = ("added", "deprecated", "removed", "breaking", "violation", "waived", "reported")
#: column headers: ``breaking`` counts incompatible changes other than removals
_HEADERS = ("added", "deprecated", "removed", "incompatible", "violation", "waived", "reported")


def _counts_row(counts: TierCounts) -> list[Text]:
    return [
        Text(str(getattr(counts, c)), "bold red" if c == "violation" and counts.violation else "")
        for c in _COLUMNS
    ]


def _stability(console: Console, report: StabilityReport, limit: int) -> None:
    console.print(
        _t(
            f"API stability of {report.package} {report.from_version} -> {report.to_version}",
            "bold",
        )
    )
    console.print(_t(f"tiers: {report.tiers_origin}"))
    tiers = _table("tier", *_HEADERS, right=_HEADERS)
    for tier, counts in report.counts.items():
        tiers.add_row(_t(tier), *_counts_row(counts))
    console.print(tiers)
    steps = _table("release step", "verdict", *_HEADERS, right=_HEADERS)
    for step in report.steps:
        total = TierCounts.of(step.findings)
        verdict = Text("pass", "green") if step.passed else Text("FAIL", "bold red")
        steps.add_row(_t(f"{step.from_version} -> {step.to_version}"), verdict, *_counts_row(total))
    console.print(steps)
    violations = report.violations
    if violations:
        table = _table("step", "tier", "kind", "object", "change")
        for step in report.steps:
            for f in step.findings:
                if f.verdict == "violation" and table.row_count < limit:
                    table.add_row(
                        _t(f"{step.from_version} -> {step.to_version}"), _t(f.tier),
                        _t(f.kind), _t(f.display_path, limit=100), _t(f.message, limit=160),
                    )  # fmt: skip
        console.print(table)
        if len(violations) > limit:
            console.print(f"... {len(violations) - limit} more violations (see the JSON report)")
    verdict = Text("PASS", "bold green") if report.passed else Text("FAIL", "bold red")
    console.print(Text(f"{len(violations)} policy violations -> ") + verdict)


def _tap(console: Console, report: TapReport, limit: int) -> None:
    console.print(
        _t(
            f"tap: {report.events} events, {report.record_puts + report.record_deletes} records "
            f"in {report.seconds:.1f} s (stopped: {report.stopped})",
            "bold",
        )
    )
    if report.violations_by_rule:
        table = _table("rule", "violations", right=("violations",))
        for rule, count in sorted(report.violations_by_rule.items(), key=lambda x: -x[1])[:limit]:
            table.add_row(_t(rule), Text(str(count), "bold red"))
        console.print(table)
    for note in report.notes[:limit]:
        console.print(_t(f"note: {note}"))
    verdict = Text("PASSED", "bold green") if report.passed else Text("FAILED", "bold red")
    console.print(Text(f"{report.violation_count} violations -> ") + verdict)
