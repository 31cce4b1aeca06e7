"""JUnit XML for CI systems: one ``testsuite`` per run, one ``testcase`` per check."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from dynconform.reports._io import Report, redacted
from dynconform.reports._model import ConformanceReport
from dynconform.reports._stability import StabilityReport
from dynconform.reports._tap import TapReport

__all__ = ["junit_xml", "write_junit"]

_XML_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def junit_xml(report: Report, suite_name: str = "dynconform") -> str:
    """The report as a JUnit XML document (secrets redacted).

    Conformance: one ``testcase`` per check; failed checks become ``<failure>``, errors
    ``<error>``, skipped checks ``<skipped>``; a known deviation is a ``<skipped>`` whose
    message names the deviation, so CI does not turn red for what the expectations file
    already records. Stability: one ``testcase`` per release step, failed by its policy
    violations. Tap: one ``testcase`` per rule, failed by its violations.
    """
    clean = redacted(report)
    if isinstance(clean, StabilityReport):
        return _document(_stability_suite(clean, suite_name))
    if isinstance(clean, TapReport):
        return _document(_tap_suite(clean, suite_name))
    return _document(_conformance_suite(clean, suite_name))


def _document(suite: ET.Element) -> str:
    ET.indent(suite)
    body: str = ET.tostring(suite, encoding="unicode")
    # XML 1.0 cannot hold these at all, not even escaped; a SUT's message may contain them
    body = _XML_ILLEGAL.sub("", body)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + body + "\n"


def _stability_suite(report: StabilityReport, suite_name: str) -> ET.Element:
    failing = [s for s in report.steps if not s.passed]
    suite = ET.Element(
        "testsuite",
        {
            "name": f"{suite_name}.stability",
            "tests": str(len(report.steps)),
            "failures": str(len(failing)),
            "errors": "0",
            "skipped": "0",
            "time": "0.000",
            "timestamp": report.date,
        },
    )
    props = ET.SubElement(suite, "properties")
    for name, value in (("package", report.package), ("tiers", report.tiers_origin)):
        ET.SubElement(props, "property", {"name": name, "value": value})
    for step in report.steps:
        case = ET.SubElement(
            suite,
            "testcase",
            {
                "classname": f"dynconform.stability.{report.package}",
                "name": f"{step.from_version} -> {step.to_version}",
                "time": "0.000",
            },
        )
        if step.passed:
            continue
        violations = [f for f in step.findings if f.verdict == "violation"]
        expired = [w for w in step.waivers if w.state == "expired"]
        lines = [f"{f.tier} {f.kind} {f.display_path}: {f.message}" for f in violations]
        lines += [f"expired waiver {w.path}: {w.reason}" for w in expired]
        message = f"{len(violations)} policy violation(s), {len(expired)} expired waiver(s)"
        ET.SubElement(case, "failure", {"message": message}).text = "\n".join(lines)
    return suite


def _tap_suite(report: TapReport, suite_name: str) -> ET.Element:
    rules = sorted(report.violations_by_rule.items())
    suite = ET.Element(
        "testsuite",
        {
            "name": f"{suite_name}.tap",
            "tests": str(max(1, len(rules))),
            "failures": str(len(rules)),
            "errors": "0",
            "skipped": "0",
            "time": f"{report.seconds:.3f}",
            "timestamp": report.date,
        },
    )
    if not rules:
        ET.SubElement(suite, "testcase", {"classname": "dynconform.tap", "name": "no violations"})
    for rule, count in rules:
        case = ET.SubElement(suite, "testcase", {"classname": "dynconform.tap", "name": rule})
        first = [v.message for v in report.violations if v.rule == rule][:5]
        ET.SubElement(case, "failure", {"message": f"{count} violation(s)"}).text = "\n".join(first)
    return suite


def _conformance_suite(report: ConformanceReport, suite_name: str) -> ET.Element:
    stats = report.statistics
    impl = report.implementation
    suite = ET.Element(
        "testsuite",
        {
            "name": suite_name,
            "tests": str(stats.total),
            "failures": "0",  # counted below
            "errors": "0",
            "skipped": "0",
            "time": f"{report.duration:.3f}",
            "timestamp": report.date,
        },
    )
    props = ET.SubElement(suite, "properties")
    for name, value in (
        ("implementation", impl.name),
        ("version", impl.version),
        ("backend", impl.backend),
        ("topology", impl.topology),
        ("seed", str(report.seed)),
    ):
        ET.SubElement(props, "property", {"name": name, "value": value})
    for check in report.checks:
        case = ET.SubElement(
            suite,
            "testcase",
            {
                "classname": f"dynconform.{check.profiles[0] if check.profiles else 'checks'}",
                "name": check.id,
                "time": f"{check.duration:.3f}",
            },
        )
        if check.known_deviation is not None and check.status in ("failed", "error"):
            ET.SubElement(
                case, "skipped", {"message": f"known deviation: {check.known_deviation}"}
            ).text = check.reason
        elif check.status == "failed":
            tag = "failure" if check.severity == "required" else "skipped"
            ET.SubElement(case, tag, {"message": check.reason[:500]}).text = check.reason
        elif check.status == "error":
            ET.SubElement(case, "error", {"message": check.reason[:500]}).text = check.reason
        elif check.status == "skipped":
            ET.SubElement(case, "skipped", {"message": check.reason[:500]})
    # the counts are those of the outcomes written above, as JUnit readers count them
    for outcome, attribute in (
        ("failure", "failures"),
        ("error", "errors"),
        ("skipped", "skipped"),
    ):
        suite.set(attribute, str(len(suite.findall(f"testcase/{outcome}"))))
    return suite


def write_junit(report: Report, path: Path) -> Path:
    """Write :func:`junit_xml` to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(junit_xml(report), encoding="utf-8")
    return path
