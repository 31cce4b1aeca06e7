"""The versioned report models and their writers (JSON, YAML, JUnit XML, Markdown, GitHub
annotations, HTML, terminal; :func:`render` picks one by name).

Three kinds share ``apiVersion: dynconform.dev/v1alpha1``: a :class:`ConformanceReport` holds
the implementation under test, each check's result and the success/partial/failure outcome
of every profile; a :class:`StabilityReport` holds a package's API and surface changes
release by release with the tier policy's verdicts; a :class:`TapReport` holds what a live
tap of a deployment saw. :func:`load_report` reads any of them::

    from dynconform.reports import load_report, junit_xml

    report = load_report(Path("report.yaml"))
    print(report.passed)

Every writer redacts secrets (:mod:`dynconform.reports._redact`) and escapes text that came
from the system under test.
"""

from __future__ import annotations

from dynconform.reports._github import annotation, github_annotations
from dynconform.reports._html import html_report, write_html
from dynconform.reports._io import (
    REPORT_KINDS,
    Report,
    load_report,
    redacted,
    report_from_dict,
    report_json,
    report_yaml,
    write_report,
    write_tap_report,
)
from dynconform.reports._junit import junit_xml, write_junit
from dynconform.reports._markdown import markdown
from dynconform.reports._measure import PERCENTILES, Measurement
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
from dynconform.reports._redact import REDACTED, Redactor, redact, redact_data, secret_name
from dynconform.reports._render import RENDER_FORMATS, render
from dynconform.reports._rich import print_terminal, terminal, use_color
from dynconform.reports._stability import (
    CHANGES,
    STABILITY_KIND,
    TIERS,
    VERDICTS,
    Change,
    StabilityFinding,
    StabilityReport,
    StabilityStep,
    StabilityWaiver,
    TierCounts,
    Verdict,
    WaiverState,
)
from dynconform.reports._tap import (
    TAP_KIND,
    PublisherCount,
    TapReport,
    TapViolation,
)
from dynconform.reports._terminal import summary_table
from dynconform.reports._text import (
    code_block,
    escape,
    escape_annotation,
    escape_html,
    escape_markdown,
    one_line,
    truncate,
)

__all__ = [
    "API_VERSION",
    "CHANGES",
    "CHECK_STATUSES",
    "KIND",
    "PERCENTILES",
    "REDACTED",
    "RENDER_FORMATS",
    "REPORT_KINDS",
    "STABILITY_KIND",
    "TAP_KIND",
    "TIERS",
    "VERDICTS",
    "Change",
    "CheckResult",
    "CheckStatus",
    "ConformanceReport",
    "Implementation",
    "Measurement",
    "ProfileOutcome",
    "ProfileReport",
    "ProfileResult",
    "PublisherCount",
    "Redactor",
    "Report",
    "Severity",
    "StabilityFinding",
    "StabilityReport",
    "StabilityStep",
    "StabilityWaiver",
    "Statistics",
    "TapReport",
    "TapViolation",
    "TierCounts",
    "Verdict",
    "WaiverState",
    "annotation",
    "code_block",
    "escape",
    "escape_annotation",
    "escape_html",
    "escape_markdown",
    "github_annotations",
    "html_report",
    "junit_xml",
    "load_report",
    "markdown",
    "one_line",
    "print_terminal",
    "profile_outcome",
    "redact",
    "redact_data",
    "redacted",
    "render",
    "report_from_dict",
    "report_json",
    "report_yaml",
    "secret_name",
    "summary_table",
    "terminal",
    "truncate",
    "use_color",
    "write_html",
    "write_junit",
    "write_report",
    "write_tap_report",
]
