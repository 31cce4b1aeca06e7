"""Plain-text summary of a report for terminals and CI logs."""

from __future__ import annotations

from typing import cast

from dynconform.reports._io import redacted
from dynconform.reports._model import ConformanceReport
from dynconform.reports._text import one_line

__all__ = ["implementation_line", "summary_table", "totals_line"]

_MARKS = {"passed": "PASS", "failed": "FAIL", "skipped": "SKIP", "error": "ERROR"}


def implementation_line(report: ConformanceReport) -> str:
    """What was tested: ``name version (backend ..., topology ...)``."""
    impl = report.implementation
    return f"{impl.name} {impl.version} (backend {impl.backend}, topology {impl.topology})"


def totals_line(report: ConformanceReport) -> str:
    """The counts of results and the duration, up to the verdict: ``... in 1.2 s -> ``."""
    stats = report.statistics
    return (
        f"{stats.total} checks: {stats.passed} passed, {stats.failed} failed, "
        f"{stats.skipped} skipped, {stats.error} errors, {stats.known_deviations} known "
        f"deviations in {report.duration:.1f} s -> "
    )


def summary_table(report: ConformanceReport, *, width: int = 100, all_checks: bool = True) -> str:
    """A table of checks (status, duration, reason), the profile outcomes and the totals;
    secrets redacted, control characters of the system under test's text dropped."""
    report = cast(ConformanceReport, redacted(report))
    lines = [implementation_line(report), ""]
    shown = [c for c in report.checks if all_checks or c.status != "passed" or c.known_deviation]
    id_width = max([len(c.id) for c in shown] + [5])
    lines.append(f"{'CHECK':<{id_width}}  STATUS  SECONDS  REASON")
    for check in shown:
        mark = (
            "XFAIL" if check.known_deviation and check.status != "passed" else _MARKS[check.status]
        )
        reason = check.reason
        if check.known_deviation and check.status != "passed":
            reason = f"known deviation: {check.known_deviation}"
        reason = one_line(reason)
        room = max(10, width - id_width - 19)
        reason = reason if len(reason) <= room else reason[: room - 3] + "..."
        lines.append(f"{check.id:<{id_width}}  {mark:<6}  {check.duration:7.2f}  {reason}")
    lines.append("")
    for profile in report.profiles:
        lines.append(
            f"profile {profile.name:<16} core: {profile.core.result:<8} "
            f"extended: {profile.extended.result}"
            + (
                f" (unsupported: {', '.join(profile.unsupported_features)})"
                if profile.unsupported_features
                else ""
            )
        )
    lines.append(totals_line(report) + ("PASSED" if report.passed else "FAILED"))
    return "\n".join(lines) + "\n"
