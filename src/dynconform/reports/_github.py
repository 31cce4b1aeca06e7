"""GitHub Actions workflow commands (``::error title=...::message``) for every report kind.

Failures become errors, advice and unused waivers warnings, known deviations and waived
changes notices; a last notice states the verdict. Messages and properties are escaped as
the workflow command syntax requires (``%``, CR and LF everywhere; ``:`` and ``,`` in
properties) and secrets are redacted.
"""

from __future__ import annotations

from dynconform.reports._io import Report, redacted
from dynconform.reports._model import CheckResult, ConformanceReport
from dynconform.reports._stability import StabilityFinding, StabilityReport
from dynconform.reports._tap import TapReport
from dynconform.reports._text import escape_annotation, truncate

__all__ = ["annotation", "github_annotations"]

_MESSAGE = 2000


def annotation(
    level: str,
    message: str,
    *,
    title: str | None = None,
    file: str | None = None,
    line: int | None = None,
) -> str:
    """One workflow command, ``level`` being ``error``, ``warning`` or ``notice``."""
    props = []
    if file:
        props.append(f"file={escape_annotation(file, prop=True)}")
        if line is not None:
            props.append(f"line={line}")
    if title:
        props.append(f"title={escape_annotation(title, prop=True)}")
    head = f"::{level} {','.join(props)}" if props else f"::{level}"
    return f"{head}::{escape_annotation(truncate(message, _MESSAGE))}"


def github_annotations(report: Report) -> str:
    """The report as workflow command lines (print them in a GitHub Actions step)."""
    clean = redacted(report)
    if isinstance(clean, StabilityReport):
        lines = _stability(clean)
    elif isinstance(clean, TapReport):
        lines = _tap(clean)
    else:
        lines = _conformance(clean)
    return "\n".join(lines) + "\n"


def _check(check: CheckResult) -> str | None:
    if check.status not in ("failed", "error"):
        return None
    message = check.reason or f"check {check.status}"
    if check.reproduce:
        message += f"\nreproduce: {check.reproduce}"
    title = f"dynconform {check.id} ({check.status})"
    if check.known_deviation is not None:
        return annotation(
            "notice", f"known deviation: {check.known_deviation}\n{message}", title=title
        )
    return annotation("error" if check.blocking else "warning", message, title=title)


def _conformance(report: ConformanceReport) -> list[str]:
    lines = [line for c in report.checks if (line := _check(c)) is not None]
    stats = report.statistics
    impl = report.implementation
    verdict = "PASSED" if report.passed else "FAILED"
    lines.append(
        annotation(
            "notice" if report.passed else "error",
            f"{impl.name} {impl.version} ({impl.backend}, {impl.topology}): {stats.total} checks, "
            f"{stats.passed} passed, {stats.failed} failed, {stats.error} errors, "
            f"{stats.skipped} skipped, {stats.known_deviations} known deviations -> {verdict}",
            title=f"dynconform conformance {verdict}",
        )
    )
    return lines


def _location(f: StabilityFinding) -> tuple[str | None, int | None]:
    if not f.location:
        return None, None
    file, _, line = f.location.rpartition(":")
    if file and line.isdigit():
        return file, int(line)
    return f.location, None


def _finding(f: StabilityFinding, step: str) -> str | None:
    levels = {"violation": "error", "warning": "warning", "waived": "notice"}
    level = levels.get(f.verdict)
    if level is None:
        return None
    file, line = _location(f)
    message = f"{f.display_path}: {f.message} ({step})"
    if f.verdict == "waived":
        message += f"; waived: {f.waiver_reason or f.reason}"
    elif f.reason:
        message += f"; {f.reason}"
    title = f"API {f.kind} ({f.tier})" + (" waived" if f.verdict == "waived" else "")
    return annotation(level, message, title=title, file=file, line=line)


def _stability(report: StabilityReport) -> list[str]:
    lines: list[str] = []
    for step in report.steps:
        name = f"{step.from_version} -> {step.to_version}"
        lines += [line for f in step.findings if (line := _finding(f, name)) is not None]
        for w in step.waivers:
            if w.state == "expired":
                msg = f"waiver for {w.path} expired on {w.expires}: {w.reason} ({name})"
                lines.append(annotation("error", msg, title="dynconform waiver expired"))
            elif w.state == "unused":
                msg = f"unused waiver for {w.path}: {w.reason} ({name})"
                lines.append(annotation("warning", msg, title="dynconform unused waiver"))
    verdict = "PASS" if report.passed else "FAIL"
    lines.append(
        annotation(
            "notice" if report.passed else "error",
            f"{report.package} {report.from_version} -> {report.to_version}: "
            f"{len(report.steps)} release steps, {len(report.violations)} policy violations "
            f"-> {verdict}",
            title=f"dynconform API stability {verdict}",
        )
    )
    return lines


def _tap(report: TapReport) -> list[str]:
    lines = []
    for rule, count in sorted(report.violations_by_rule.items()):
        first = next((v for v in report.violations if v.rule == rule), None)
        detail = f": {first.message} ({first.where or first.pointer})" if first else ""
        lines.append(annotation("error", f"{count} violation(s){detail}", title=f"tap {rule}"))
    verdict = "PASSED" if report.passed else "FAILED"
    lines.append(
        annotation(
            "notice" if report.passed else "error",
            f"{report.events} events, {report.violation_count} violations -> {verdict}",
            title=f"dynconform tap {verdict}",
        )
    )
    return lines
