"""One entry point for every writer: ``render(report, "markdown")`` and friends."""

from __future__ import annotations

from dynconform.reports._github import github_annotations
from dynconform.reports._html import html_report
from dynconform.reports._io import Report, report_json, report_yaml
from dynconform.reports._junit import junit_xml
from dynconform.reports._markdown import markdown
from dynconform.reports._rich import terminal

__all__ = ["RENDER_FORMATS", "render"]

#: every format :func:`render` writes
RENDER_FORMATS = ("terminal", "markdown", "json", "yaml", "junit", "github", "html")


def render(report: Report, fmt: str, *, color: bool | None = None) -> str:
    """The report in ``fmt`` (one of :data:`RENDER_FORMATS`), secrets redacted; ``color``
    applies to ``terminal`` only (default: colour on a terminal without ``NO_COLOR``)."""
    if fmt == "terminal":
        return terminal(report, color=color)
    if fmt == "markdown":
        return markdown(report)
    if fmt == "json":
        return report_json(report)
    if fmt == "yaml":
        return report_yaml(report)
    if fmt == "junit":
        return junit_xml(report)
    if fmt == "github":
        return github_annotations(report)
    if fmt == "html":
        return html_report(report)
    raise ValueError(f"unknown report format {fmt!r} (known: {', '.join(RENDER_FORMATS)})")
