"""Terminal output with rich: colour on a terminal, plain text in pipes, CI logs and files.

Colour is used only when the output is a terminal and ``NO_COLOR`` is unset (or empty), as
https://no-color.org asks; ``color=True`` or ``False`` decides explicitly. Text from the
system under test is rendered as plain text: rich markup in it is not interpreted and
control characters (terminal escape sequences) are dropped.
"""

from __future__ import annotations

import io
import os
import sys
from typing import TextIO

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from dynconform.reports._io import Report, redacted
from dynconform.reports._model import ConformanceReport, ProfileOutcome
from dynconform.reports._stability import StabilityReport, TierCounts
from dynconform.reports._tap import TapReport
from dynconform.reports._terminal import implementation_line, totals_line
from dynconform.reports._text import one_line, truncate

__all__ = ["print_terminal", "terminal", "use_color"]

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


def use_color(stream: TextIO | None = None) -> bool:
    """Whether to colour output to ``stream`` (default stdout): a TTY and no ``NO_COLOR``."""
    if os.environ.get("NO_COLOR"):
        return False
    stream = sys.stdout if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _t(text: str, style: str = "", limit: int = 300) -> Text:
    return Text(truncate(one_line(text), limit), style=style)


def terminal(
    report: Report,
    *,
    color: bool | None = None,
    width: int | None = None,
    all_checks: bool = False,
    limit: int = 20,
) -> str:
    """The report for a terminal: ANSI colours only when ``color`` (default: :func:`use_color`
    of stdout), at most ``limit`` items per list."""
    color = use_color() if color is None else color
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        force_terminal=color,
        no_color=not color,
        color_system="standard" if color else None,
        width=width or 110,
        highlight=False,
        emoji=False,
        soft_wrap=False,
    )
    clean = redacted(report)
    if isinstance(clean, StabilityReport):
        _stability(console, clean, limit)
    elif isinstance(clean, TapReport):
        _tap(console, clean, limit)
    else:
        _conformance(console, clean, all_checks, limit)
    return buffer.getvalue()


def print_terminal(report: Report, file: TextIO | None = None, **options: bool | int) -> None:
    """Write :func:`terminal` to ``file`` (default stdout), coloured if that is a terminal."""
    stream = sys.stdout if file is None else file
    color = bool(options.pop("color", use_color(stream)))
    stream.write(terminal(report, color=color, **options))  # type: ignore[arg-type]


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
