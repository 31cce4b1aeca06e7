"""The HTML report: structure, escaping, redaction, offline-ness and charts (no browser here;
tests/reports/test_html_browser.py opens the pages in Chromium)."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from html_samples import (
    HOSTILE_MODEL,
    HOSTILE_STRINGS,
    conformance_report,
    passing_report,
    stability_report,
)

from dynconform.reports import (
    CheckResult,
    ConformanceReport,
    Implementation,
    TapReport,
    TapViolation,
    html_report,
    redact_data,
    write_html,
)
from dynconform.reports import _html as html_mod
from dynconform.reports._svg import Box, Series, box_plot, stacked_bars

#: every element the writer itself produces; anything else came from the report's text
ALLOWED_TAGS = frozenset(
    [
        "html",
        "head",
        "meta",
        "title",
        "style",
        "body",
        "a",
        "header",
        "h1",
        "h2",
        "h3",
        "h4",
        "p",
        "section",
        "strong",
        "span",
        "ul",
        "li",
        "b",
        "dl",
        "dt",
        "dd",
        "main",
        "article",
        "pre",
        "code",
        "figure",
        "figcaption",
        "details",
        "summary",
        "div",
        "table",
        "caption",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
        "form",
        "fieldset",
        "legend",
        "label",
        "input",
        "button",
        "footer",
        "script",
        "br",
        "svg",
        "desc",
        "rect",
        "text",
        "line",
        "circle",
        "g",
    ]
)


class Page(HTMLParser):
    """What a browser's parser sees: tags, attributes, script bodies, visible text."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self.text: list[str] = []
        self._script: dict[str, str | None] | None = None
        self.comments: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._script = dict(attrs)
            self.scripts.append((self._script, ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._script = None

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            attrs, body = self.scripts[-1]
            self.scripts[-1] = (attrs, body + data)
        else:
            self.text.append(data)

    def handle_comment(self, data: str) -> None:
        self.comments.append(data)

    @property
    def handlers(self) -> list[str]:
        return [f"{t} {k}" for t, a in self.tags for k in a if k.lower().startswith("on")]


def _embedded(page: Page) -> object:
    (data,) = [body for attrs, body in page.scripts if attrs.get("type") == "application/json"]
    return json.loads(data)


def _assert_inert(text: str) -> Page:
    page = Page(text)
    assert {t for t, _ in page.tags} <= ALLOWED_TAGS
    assert page.handlers == []
    assert len(page.scripts) == 2
    assert page.comments == []
    return page


def test_conformance_page_verdict_failures_and_escaping() -> None:
    report = conformance_report()
    text = html_report(report)
    page = _assert_inert(text)
    visible = "".join(page.text)
    # verdict first: the first section of the page is the verdict
    assert text.index('id="verdict"') < text.index("id='failures'")
    assert "FAILED" in visible
    assert "2 required check(s) failed or errored, of 9" in visible
    for hostile in HOSTILE_STRINGS:
        assert hostile not in text
    for hostile in (HOSTILE_MODEL, conformance_report().implementation.name):
        assert hostile in visible
    # failures: blocking first, each with its reason and its reproduce command
    order = re.findall(r'<article class="failure[^"]*" data-check="([^"]+)"', text)
    assert order == ["events.kv.sequence", "http.chat.basic", "kv.block-size", "metrics.names"]
    assert "dynconform run --backend reference --check http.chat.basic --seed 7" in visible
    assert "dynconform run --check metrics.names --seed 7" in visible
    assert "ConnectionResetError: the event plane went away" in visible


def test_embedded_json_is_the_redacted_report_and_cannot_close_its_element() -> None:
    report = conformance_report()
    text = html_report(report)
    page = _assert_inert(text)
    assert _embedded(page) == redact_data(report.to_dict())
    body = next(b for a, b in page.scripts if a.get("type") == "application/json")
    assert "</" not in body
    assert "<!--" not in body
    assert "<" not in body


def test_escaping_mutants_are_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """The structural check fails when escaping is removed, in the markup or in the JSON."""
    report = conformance_report()
    with monkeypatch.context() as m:
        m.setattr(html_mod, "_e", str)
        with pytest.raises(AssertionError):
            _assert_inert(html_report(report))
    with monkeypatch.context() as m:
        m.setattr(html_mod, "embed_json", json.dumps)
        with pytest.raises(AssertionError):
            _assert_inert(html_report(report))
    _assert_inert(html_report(report))


def test_offline_page_with_a_strict_content_security_policy() -> None:
    text = html_report(conformance_report())
    page = Page(text)
    fetching = [
        (tag, key, value)
        for tag, attrs in page.tags
        for key, value in attrs.items()
        if key in ("src", "href", "srcset", "action", "data", "poster")
        and not (value or "").startswith("#")
    ]
    assert fetching == []
    assert "<link" not in text
    assert "@import" not in text
    assert "url(" not in text
    (csp,) = [
        a["content"] for t, a in page.tags if a.get("http-equiv") == "Content-Security-Policy"
    ]
    assert csp is not None
    assert "default-src 'none'" in csp
    assert "unsafe-inline" not in csp
    script = next(b for a, b in page.scripts if "type" not in a)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in csp


def test_secrets_are_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_abcdefghijklmnop")
    check = CheckResult(
        id="http.chat.basic",
        title="chat",
        status="failed",
        profiles=("core",),
        reason="401 with token hf_abcdefghijklmnop from nats://admin:hunter22@10.0.0.1:4222",
    )
    report = ConformanceReport.build(
        Implementation("x", "1", "dynamo", "etcd", {"api_key": "sk-live-123456"}),
        [check],
        profiles=("core",),
        supported_features=(),
        date="d",
        dynconform_version="0.1.0",
        seed=1,
    )
    text = html_report(report)
    for secret in ("hf_abcdefghijklmnop", "hunter22", "sk-live-123456"):
        assert secret not in text
    assert text.count("[redacted]") >= 3


def test_filter_controls_match_the_rows() -> None:
    report = conformance_report()
    text = html_report(report)
    page = Page(text)
    rows = [a for t, a in page.tags if t == "tr" and "data-status" in a]
    assert len(rows) == len(report.checks)
    boxes = {
        (a["data-filter"], a["value"]): a
        for t, a in page.tags
        if t == "input" and "data-filter" in a
    }
    labels = re.findall(r'data-filter="(\w+)" value="(\w+)" checked> ([^<]+) \((\d+)\)', text)
    for dim, token, value, count in labels:
        assert (dim, token) in boxes
        carrying = [r for r in rows if token in (r[f"data-{dim}"] or "").split()]
        assert len(carrying) == int(count), (dim, value)
    statuses = {value: int(count) for dim, _, value, count in labels if dim == "status"}
    assert statuses == {"passed": 4, "failed": 3, "error": 1, "skipped": 1}
    profiles = {value: int(count) for dim, _, value, count in labels if dim == "profile"}
    assert profiles == {"core": 5, "streaming": 2, "kv-routing": 4}


def test_profile_chart_and_latency_box_plot() -> None:
    text = html_report(conformance_report())
    chart = re.search(r'<svg class="chart" id="chart-profiles".*?</svg>', text, re.S)
    assert chart is not None
    tips = re.findall(r"<title>([^<]+)</title></rect>", chart.group(0))
    assert tips == [
        "core: 2 passed",
        "core: 2 failed",
        "core: 1 skipped",
        "streaming: 1 passed",
        "streaming: 1 failed",
        "kv-routing: 2 passed",
        "kv-routing: 1 failed",
        "kv-routing: 1 error",
    ]
    latency = re.search(r'<svg class="chart" id="chart-latency".*?</svg>', text, re.S)
    assert latency is not None
    assert latency.group(0).count("<g>") == 3
    assert "(log scale)" in latency.group(0)
    assert "id='latency'" not in html_report(passing_report())


def test_passing_report() -> None:
    text = html_report(passing_report())
    visible = "".join(_assert_inert(text).text)
    assert "PASSED" in visible
    assert "No check failed." in visible
    assert 'class="verdict pass"' in text


def test_stability_page() -> None:
    report = stability_report()
    text = html_report(report)
    page = _assert_inert(text)
    visible = "".join(page.text)
    assert "FAIL" in visible
    assert "1 policy violation(s) and 1 expired waiver(s)" in visible
    assert "dynconform api diff pypi:ai-dynamo==1.5.1 pypi:ai-dynamo==1.6.1" in visible
    assert "Waiver dynamo.llm.gone" in visible
    rows = [a for t, a in page.tags if t == "tr" and "data-tier" in a]
    assert len(rows) == len(report.findings)
    chart = re.search(r'id="chart-tiers".*?</svg>', text, re.S)
    assert chart is not None
    tips = re.findall(r"<title>([^<]+)</title></rect>", chart.group(0))
    assert tips == [
        "1.5.0 \u2192 1.5.1: 2 stable",
        "1.5.0 \u2192 1.5.1: 1 experimental",
        "1.5.1 \u2192 1.6.1: 3 stable",
        "1.5.1 \u2192 1.6.1: 2 beta",
        "1.5.1 \u2192 1.6.1: 1 internal",
    ]
    assert _embedded(page) == redact_data(report.to_dict())


def test_tap_page() -> None:
    report = TapReport(
        source={"replay": "capture.bin"},
        date="d",
        dynconform_version="0.1.0",
        seconds=2.0,
        stopped="end",
        events=10,
        by_contract={"events.kv-events": 10},
        violations_by_rule={"kv.sequence-monotonic": 1},
        violations=(
            TapViolation("events", "events.kv-events", "kv.sequence-monotonic", "/id", "<b>"),
        ),
    )
    text = html_report(report)
    visible = "".join(_assert_inert(text).text)
    assert "FAILED" in visible
    assert "1 violation(s)" in visible
    assert "<b>" in visible


def test_write_html(tmp_path: Path) -> None:
    path = write_html(passing_report(), tmp_path / "out" / "report.html")
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_stacked_bars_are_proportional() -> None:
    svg = stacked_bars(
        "c", "t", [("a", [3, 1]), ("<b>", [0, 2])], [Series("x", "#000"), Series("y", "#111")]
    )
    bars = r'<rect x="[\d.]+" y="\d+" width="([\d.]+)" height="26"'
    widths = [float(w) for w in re.findall(bars, svg)]
    assert len(widths) == 3
    assert widths[0] == pytest.approx(3 * widths[1])
    assert widths[2] == pytest.approx(2 * widths[1])
    assert "<b>" not in svg
    assert html.escape("<b>") in svg


def test_box_plot_scale() -> None:
    linear = box_plot("c", "t", [Box("a", 5, 1, 2, 3, 4, 2.5, 5)])
    assert "(log scale)" not in linear
    assert ">5</text>" in linear
    wide = box_plot("c", "t", [Box("a", 5, 0.5, 2, 3, 4, 2.5, 900)])
    assert "(log scale)" in wide
    assert ">1000</text>" in wide
