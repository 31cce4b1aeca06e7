"""Plain-text summary of a report for terminals and CI logs."""

from __future__ import annotations

from dynconform.reports._model import ConformanceReport

__all__ = ["summary_table"]

_MARKS = {"passed": "PASS", "failed": "FAIL", "skipped": "SKIP", "error": "ERROR"}


def summary_table(report: ConformanceReport, *, width: int = 100, all_checks: bool = True) -> str:
    """A table of checks (status, duration, reason), the profile outcomes and the totals."""
    impl = report.implementation
    lines = [
        f"{impl.name} {impl.version} (backend {impl.backend}, topology {impl.topology})",
        "",
    ]
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
    stats = report.statistics
    lines.append(
        f"{stats.total} checks: {stats.passed} passed, {stats.failed} failed, "
        f"{stats.skipped} skipped, {stats.error} errors, {stats.known_deviations} known "
        f"deviations in {report.duration:.1f} s -> {'PASSED' if report.passed else 'FAILED'}"
    )
    return "\n".join(lines) + "\n"
