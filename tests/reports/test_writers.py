"""Markdown, GitHub annotations, JUnit and terminal output of real reports, and escaping."""

from __future__ import annotations

import dataclasses
import io
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
from html_samples import conformance_report
from reports_helpers import RUN_CHECKS, VIOLATION, table_rows

from dynconform.reports import (
    ConformanceReport,
    StabilityReport,
    StabilityWaiver,
    annotation,
    code_block,
    escape,
    escape_markdown,
    github_annotations,
    junit_xml,
    markdown,
    print_terminal,
    render,
    terminal,
)

HOSTILE = "<script>alert(1)</script> | `tick` ``` |x| *b* [l](javascript:x)\n# head"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(scope="module")
def hostile(run_report: ConformanceReport) -> ConformanceReport:
    """The real run, with text a hostile system under test could have sent."""
    impl = dataclasses.replace(
        run_report.implementation, name=HOSTILE, details={"model": HOSTILE + "\x1b[2J"}
    )
    failed = run_report.check("http.usage.totals")
    checks = tuple(
        dataclasses.replace(c, reason=f"{HOSTILE} \x1b[31mred\x1b[0m [bold]x[/bold]")
        if c is failed
        else c
        for c in run_report.checks
    )
    return dataclasses.replace(run_report, implementation=impl, checks=checks)


# -- markdown ------------------------------------------------------------------------------------


def test_markdown_of_the_real_run_leads_with_the_verdict(run_report: ConformanceReport) -> None:
    text = markdown(run_report)
    assert text.splitlines()[0] == "## dynconform conformance: FAILED"
    assert "### Failures (1)" in text
    failure = run_report.check("http.usage.totals")
    assert failure.reproduce == (
        f"dynconform run --backend reference --violate {VIOLATION} --check http.usage.totals "
        "--seed 7"
    )
    assert code_block(failure.reproduce, "sh").replace("\n", "\n  ") in text
    rows = table_rows(text, "| Profile |")
    assert [r[0] for r in rows] == [p.name for p in run_report.profiles]
    assert all(len(r) == 4 for r in rows)
    latency = {r[0]: r for r in table_rows(text, "| Latency (ms) |")}
    assert {"http.chat.total", "http.chat.ttft"} <= set(latency)
    assert len(text) < 5000
    assert text.index("Failures") < text.index("| Profile |")


def test_markdown_escapes_text_from_the_system_under_test(hostile: ConformanceReport) -> None:
    text = markdown(hostile)
    assert "<script" not in text
    assert "&lt;script&gt;" in text
    assert "\x1b" not in text
    assert "\n# head" not in text
    failure_line = next(ln for ln in text.splitlines() if ln.startswith("- **http.usage.totals"))
    assert failure_line.count("`") == failure_line.count("\\`")
    assert "[l]" not in failure_line
    # the table stays a table: every row has its four cells
    rows = table_rows(text, "| Profile |")
    assert all(len(r) == 4 for r in rows)
    header = text.splitlines()[2]
    assert "\\|" in header
    assert escape_markdown("a|b") == "a\\|b"
    assert escape(HOSTILE, "html").startswith("&lt;script&gt;")


def test_a_hostile_model_name_in_a_table_cell_keeps_the_row(hostile: ConformanceReport) -> None:
    profiles = tuple(dataclasses.replace(p, name=HOSTILE) for p in hostile.profiles[:1])
    text = markdown(dataclasses.replace(hostile, profiles=profiles))
    (row,) = table_rows(text, "| Profile |")
    assert len(row) == 4
    assert row[0].startswith("&lt;script&gt;alert(1)&lt;/script&gt; \\| \\`tick\\`")


def test_stability_markdown_fits_a_pull_request_comment(published: StabilityReport) -> None:
    text = markdown(published)
    assert len(text) < 65536
    assert text.splitlines()[0] == "## API stability of ai-dynamo 1.0.0 -> 1.6.1: FAIL"
    steps = table_rows(text, "| Release step |")
    assert len(steps) == len(published.steps)
    for row, step in zip(steps, published.steps, strict=True):
        assert row[1] == ("pass" if step.passed else "FAIL")
        assert int(row[6]) == sum(c.violation for c in step.counts.values())
    tiers = {r[0]: r for r in table_rows(text, "| Tier |")}
    assert int(tiers["stable"][5]) == published.counts["stable"].violation
    for step in published.steps:
        if not step.passed:
            assert f"{step.from_version} -&gt; {step.to_version}: FAIL" not in text
            assert f"<summary>{step.from_version} -> {step.to_version}: FAIL" in text


def test_stability_markdown_lists_waivers_and_their_reasons(published: StabilityReport) -> None:
    step = next(s for s in published.steps if not s.passed)
    violation = next(f for f in step.findings if f.verdict == "violation")
    waived = dataclasses.replace(violation, verdict="waived", waiver_reason="agreed in | #42")
    findings = tuple(waived if f is violation else f for f in step.findings)
    waiver = StabilityWaiver(path="dynamo.old.*", reason="gone for good", state="expired")
    changed = dataclasses.replace(step, findings=findings, waivers=(waiver,))
    report = dataclasses.replace(published, steps=(changed,))
    text = markdown(report)
    assert "agreed in \\| #42" in text
    assert "waiver dynamo.old.\\*: expired (gone for good)" in text
    row = next(r for r in table_rows(text, "| Verdict |") if r[0] == "waived")
    assert len(row) == 7


# -- github annotations --------------------------------------------------------------------------


def test_annotation_escaping() -> None:
    line = annotation("error", "50% done\r\nnext", title="a: b, c%", file="x,y:z.py", line=3)
    assert line == "::error file=x%2Cy%3Az.py,line=3,title=a%3A b%2C c%25::50%25 done%0D%0Anext"
    assert annotation("notice", "m") == "::notice::m"


def test_github_annotations_of_the_real_run(run_report: ConformanceReport) -> None:
    lines = github_annotations(run_report).splitlines()
    errors = [ln for ln in lines if ln.startswith("::error title=dynconform http.usage.totals")]
    assert len(errors) == 1
    assert "%0Areproduce: dynconform run --backend reference" in errors[0]
    assert lines[-1].startswith("::error title=dynconform conformance FAILED::")
    assert f"{len(RUN_CHECKS)} checks" in lines[-1]
    assert all(ln.startswith("::") for ln in lines)


def test_github_annotations_of_hostile_text_stay_one_line_each(hostile: ConformanceReport) -> None:
    text = github_annotations(hostile)
    assert all(ln.startswith("::") for ln in text.splitlines())
    assert "%0A# head" in text


def test_github_annotations_of_stability(published: StabilityReport) -> None:
    lines = github_annotations(published).splitlines()
    errors = [ln for ln in lines if ln.startswith("::error file=")]
    assert len(errors) == len(published.violations)
    assert re.match(
        r"::error file=dynamo/[^,]+,line=\d+,title=API [a-z-]+ \((stable|beta)\)::", errors[0]
    )
    assert lines[-1].startswith("::error title=dynconform API stability FAIL::")


# -- junit ---------------------------------------------------------------------------------------


def test_junit_of_both_kinds(run_report: ConformanceReport, published: StabilityReport) -> None:
    suite = ET.fromstring(junit_xml(run_report))
    assert (suite.get("tests"), suite.get("failures")) == (str(len(RUN_CHECKS)), "1")
    stability = ET.fromstring(junit_xml(published))
    failing = [c for c in stability.iter("testcase") if c.find("failure") is not None]
    assert len(failing) == sum(1 for s in published.steps if not s.passed)


def test_junit_counts_are_the_outcomes_of_its_test_cases() -> None:
    # one required failure, one error, and three skipped: a recommended failure, a skipped
    # check and a known deviation
    suite = ET.fromstring(junit_xml(conformance_report(hostile=False)))
    counts = {k: suite.get(k) for k in ("failures", "errors", "skipped")}
    assert counts == {"failures": "1", "errors": "1", "skipped": "3"}
    for tag, attribute in (("failure", "failures"), ("error", "errors"), ("skipped", "skipped")):
        assert len(suite.findall(f"testcase/{tag}")) == int(counts[attribute] or 0)


def test_junit_drops_characters_xml_cannot_hold(hostile: ConformanceReport) -> None:
    ET.fromstring(junit_xml(hostile))  # the ANSI escape would make it unreadable


# -- terminal ------------------------------------------------------------------------------------


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_colours_only_a_terminal_without_no_color(
    run_report: ConformanceReport, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    tty, pipe = _Tty(), io.StringIO()
    print_terminal(run_report, tty)
    print_terminal(run_report, pipe)
    assert ANSI.search(tty.getvalue())
    assert not ANSI.search(pipe.getvalue())
    assert ANSI.sub("", tty.getvalue()).split() == pipe.getvalue().split()
    monkeypatch.setenv("NO_COLOR", "1")
    tty = _Tty()
    print_terminal(run_report, tty)
    assert not ANSI.search(tty.getvalue())
    assert not ANSI.search(render(run_report, "terminal"))


def test_terminal_shows_failures_profiles_and_latency(run_report: ConformanceReport) -> None:
    text = terminal(run_report, color=False)
    assert "http.usage.totals" in text
    assert "FAILED" in text.splitlines()[-1]
    assert "http.chat.ttft" in text
    assert "http.chat.valid" not in text  # passed checks are not listed by default
    assert "http.chat.valid" in terminal(run_report, color=False, all_checks=True)


def test_terminal_neither_interprets_markup_nor_passes_escapes(hostile: ConformanceReport) -> None:
    text = terminal(hostile, color=True)
    assert "\x1b[2J" not in text
    assert "\x1b[31mred" not in text
    assert "[bold]x[/bold]" in ANSI.sub("", text).replace("\n", "")


def test_terminal_of_stability(published: StabilityReport) -> None:
    text = terminal(published, color=False, width=160)
    assert text.splitlines()[0] == "API stability of ai-dynamo 1.0.0 -> 1.6.1"
    assert f"{len(published.violations)} policy violations -> FAIL" in text
    assert "1.5.1 -> 1.6.0" in text


def test_rich_loads_with_the_first_terminal_output_only() -> None:
    """Importing the reports package (the runner and its pytest plugin do) leaves rich out."""
    code = (
        "import sys; import dynconform.reports as r; before = 'rich' in sys.modules; "
        "tap = r.TapReport(source={}, date='d', dynconform_version='0', seconds=1.0, "
        "stopped='end', events=3); text = r.terminal(tap, color=False); "
        "print(before, 'rich' in sys.modules, text.splitlines()[0])"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert proc.stdout.strip() == "False True tap: 3 events, 0 records in 1.0 s (stopped: end)"
