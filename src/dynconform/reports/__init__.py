"""The versioned conformance report model and its writers (JSON, YAML, JUnit XML).

A :class:`ConformanceReport` (``apiVersion: dynconform.dev/v1alpha1``, ``kind:
ConformanceReport``) holds the implementation under test, each check's result and the
success/partial/failure outcome of every profile::

    from dynconform.reports import load_report, junit_xml

    report = load_report(Path("report.yaml"))
    print(report.passed, report.statistics.failed)
"""

from __future__ import annotations

from dynconform.reports._io import load_report, report_json, report_yaml, write_report
from dynconform.reports._junit import junit_xml, write_junit
from dynconform.reports._model import (
    API_VERSION,
    CHECK_STATUSES,
    KIND,
    CheckResult,
    CheckStatus,
    ConformanceReport,
    Implementation,
    ProfileOutcome,
    ProfileReport,
    ProfileResult,
    Severity,
    Statistics,
    profile_outcome,
)
from dynconform.reports._terminal import summary_table

__all__ = [
    "API_VERSION",
    "CHECK_STATUSES",
    "KIND",
    "CheckResult",
    "CheckStatus",
    "ConformanceReport",
    "Implementation",
    "ProfileOutcome",
    "ProfileReport",
    "ProfileResult",
    "Severity",
    "Statistics",
    "junit_xml",
    "load_report",
    "profile_outcome",
    "report_json",
    "report_yaml",
    "summary_table",
    "write_junit",
    "write_report",
]
