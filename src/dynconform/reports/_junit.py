"""JUnit XML for CI systems: one ``testsuite`` per run, one ``testcase`` per check."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from dynconform.reports._model import ConformanceReport

__all__ = ["junit_xml", "write_junit"]


def junit_xml(report: ConformanceReport, suite_name: str = "dynconform") -> str:
    """The report as a JUnit XML document.

    Failed checks become ``<failure>``, errors ``<error>``, skipped checks ``<skipped>``;
    a known deviation is a ``<skipped>`` whose message names the deviation, so CI does not
    turn red for what the expectations file already records.
    """
    stats = report.statistics
    impl = report.implementation
    suite = ET.Element(
        "testsuite",
        {
            "name": suite_name,
            "tests": str(stats.total),
            "failures": str(sum(1 for c in report.checks if c.status == "failed" and c.blocking)),
            "errors": str(sum(1 for c in report.checks if c.status == "error" and c.blocking)),
            "skipped": str(
                stats.skipped + sum(1 for c in report.checks if c.known_deviation is not None)
            ),
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
    ET.indent(suite)
    body: str = ET.tostring(suite, encoding="unicode")
    return '<?xml version="1.0" encoding="utf-8"?>\n' + body + "\n"


def write_junit(report: ConformanceReport, path: Path) -> Path:
    """Write :func:`junit_xml` to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(junit_xml(report), encoding="utf-8")
    return path
