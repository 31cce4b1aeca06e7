"""One self-contained HTML page per report: verdict first, failures with their reason and the
command that reproduces them, inline SVG charts, and a table that filters in the browser.

The page needs no network: CSS, JavaScript and charts are inline, and a Content Security
Policy forbids every fetch and every script but the page's own (by hash). Text from the
system under test is HTML-escaped; the report itself, redacted, is embedded as JSON
(``<script type="application/json" id="dynconform-report">``) with ``<``, ``>`` and ``&``
written as ``\\u003c``, ``\\u003e``, ``\\u0026``, so that it can neither close the element
nor open a comment::

    from dynconform.reports import load_report, write_html

    write_html(load_report(Path("out/report.json")), Path("out/report.html"))
"""

from __future__ import annotations

import base64
import hashlib
import json
import shlex
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from dynconform.reports._io import Report, report_from_dict
from dynconform.reports._model import CHECK_STATUSES, CheckResult, ConformanceReport
from dynconform.reports._redact import redact_data
from dynconform.reports._stability import (
    CHANGES,
    TIERS,
    VERDICTS,
    StabilityFinding,
    StabilityReport,
    StabilityStep,
)
from dynconform.reports._svg import Box, Series, box_plot, stacked_bars
from dynconform.reports._tap import TapReport
from dynconform.reports._text import escape_html

__all__ = ["html_report", "write_html"]

#: the id of the ``<script type="application/json">`` element that holds the report
DATA_ID = "dynconform-report"

_STATUS_SERIES = (
    Series("passed", "#009E73"),
    Series("failed", "#D55E00"),
    Series("error", "#CC79A7", "#000000"),
    Series("skipped", "#BBBBBB", "#000000"),
)
_TIER_COLORS = {
    "stable": ("#0072B2", "#ffffff"),
    "beta": ("#56B4E9", "#000000"),
    "experimental": ("#E69F00", "#000000"),
    "internal": ("#999999", "#000000"),
}
_STATUS_ORDER = {"failed": 0, "error": 1, "skipped": 2, "passed": 3}
_VERDICT_ORDER = {v: i for i, v in enumerate(VERDICTS)}


def _e(text: object) -> str:
    """Escape text for HTML content and double- or single-quoted attributes."""
    return escape_html(str(text))


def _asset(name: str) -> str:
    return resources.files("dynconform.reports").joinpath("assets", name).read_text("utf-8")


def _csp_hash(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def embed_json(data: Any) -> str:
    """JSON safe inside a ``<script>`` element: no ``</``, ``<!--`` or ``]]>`` can appear."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _redacted(report: Report) -> tuple[Report, dict[str, Any]]:
    """The report after the redaction pass, as a model and as its serialised form."""
    data: dict[str, Any] = redact_data(report.to_dict())
    return report_from_dict(data), data


def _seconds(value: float) -> str:
    if value >= 120:
        minutes, secs = divmod(round(value), 60)
        return f"{minutes} min {secs} s"
    return f"{value:.2f} s" if value < 10 else f"{value:.1f} s"


def _badge(word: str, cls: str | None = None) -> str:
    return f'<span class="badge s-{_e(cls or word)}">{_e(word)}</span>'


def _facts(items: Iterable[tuple[str, object]]) -> str:
    rows = [f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in items if v not in (None, "")]
    return '<dl class="facts">' + "".join(rows) + "</dl>"


def _stats(items: Iterable[tuple[str, object]]) -> str:
    cells = "".join(f"<li><b>{_e(v)}</b> {_e(k)}</li>" for k, v in items)
    return f'<ul class="stats" aria-label="Totals">{cells}</ul>'


def _table(
    caption: str, head: Sequence[str], rows: Iterable[Sequence[object]], numeric: int = 0
) -> str:
    """A plain table; the last ``numeric`` columns are right-aligned numbers."""
    first_num = len(head) - numeric

    def cls(i: int) -> str:
        return ' class="num"' if i >= first_num else ""

    th = "".join(f'<th scope="col"{cls(i)}>{_e(h)}</th>' for i, h in enumerate(head))
    body = "".join(
        "<tr>" + "".join(f"<td{cls(i)}>{_e(c)}</td>" for i, c in enumerate(row)) + "</tr>"
        for row in rows
    )
    return (
        f"<div class='scroll'><table><caption class='sr-only'>{_e(caption)}</caption>"
        f"<thead><tr>{th}</tr></thead><tbody>{body}</tbody></table></div>"
    )


def _figure(svg: str, caption: str, data_table: str) -> str:
    return (
        f"<figure>{svg}<figcaption>{_e(caption)}</figcaption>"
        f"<details class='noprint'><summary>Chart data as a table</summary>{data_table}"
        "</details></figure>"
    )


class _Filters:
    """The filter dimensions of one table: each value gets a token (``d3``) that rows carry
    in ``data-<dimension>`` and that the checkbox of that value has as its value."""

    def __init__(self, dims: Sequence[tuple[str, str, Sequence[str]]]) -> None:
        #: (dimension, legend, preferred order of values)
        self._dims = dims
        self._tokens: dict[str, dict[str, str]] = {d: {} for d, _, _ in dims}
        self._counts: dict[str, dict[str, int]] = {d: {} for d, _, _ in dims}

    def attrs(self, values: Mapping[str, Iterable[str]]) -> str:
        """``data-*`` attributes of a row that has ``values`` in each dimension."""
        out = []
        for dim, _, _ in self._dims:
            listed = list(dict.fromkeys(values.get(dim, ()))) or ["(none)"]
            tokens = self._tokens[dim]
            for value in listed:
                tokens.setdefault(value, f"{dim[0]}{len(tokens)}")
                self._counts[dim][value] = self._counts[dim].get(value, 0) + 1
            out.append(f'data-{dim}="{" ".join(tokens[v] for v in listed)}"')
        return " ".join(out)

    def controls(self, what: str, total: int) -> str:
        """The checkboxes (all checked), the shown-rows counter and the empty notice."""
        sets = []
        for dim, legend, order in self._dims:
            values = self._tokens[dim]
            rank = {v: i for i, v in enumerate(order)}
            ordered = sorted(values, key=lambda v: (rank.get(v, len(rank)), v))
            boxes = "".join(
                f'<label><input type="checkbox" data-filter="{dim}" value="{values[v]}" '
                f"checked> {_e(v)} ({self._counts[dim][v]})</label>"
                for v in ordered
            )
            sets.append(
                f'<fieldset id="filter-{dim}"><legend>{_e(legend)}'
                f'<button type="button" data-set="all" data-dim="{dim}">all</button>'
                f'<button type="button" data-set="none" data-dim="{dim}">none</button>'
                f"</legend>{boxes}</fieldset>"
            )
        return (
            f'<form class="filters" aria-label="Filter {_e(what)}">{"".join(sets)}'
            '<div><button type="button" data-set="all">reset filters</button></div></form>'
            f'<p class="shown" aria-live="polite"><span id="rows-shown">{total}</span> of '
            f"{total} {_e(what)} shown</p>"
            f'<p id="rows-empty" class="empty" hidden>No {_e(what)} match the filters.</p>'
        )


def _filtered_table(
    what: str, filters: _Filters, head: Sequence[str], rows: Sequence[tuple[str, str]]
) -> str:
    """Filter controls and a table whose rows are ``(data attributes, cells html)``."""
    th = "".join(f'<th scope="col">{_e(h)}</th>' for h in head)
    body = "".join(f"<tr {attrs}>{cells}</tr>" for attrs, cells in rows)
    return (
        filters.controls(what, len(rows)) + '<div class="scroll">'
        f'<table id="rows" data-filterable><caption class="sr-only">{_e(what)}</caption>'
        f"<thead><tr>{th}</tr></thead><tbody>{body}</tbody></table></div>"
    )


def _page(title: str, heading: str, subtitle: str, verdict: str, body: str, data: Any) -> str:
    css, js = _asset("report.css"), _asset("report.js")
    csp = (
        "default-src 'none'; img-src data:; base-uri 'none'; form-action 'none'; "
        f"style-src {_csp_hash(css)}; script-src {_csp_hash(js)}"
    )
    generator = _e(data.get("metadata", {}).get("dynconformVersion", ""))
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">\n'
        f'<meta name="generator" content="dynconform {generator}">\n'
        f"<title>{_e(title)}</title>\n<style>{css}</style>\n</head>\n<body>\n"
        '<a class="skip" href="#main">Skip to the details</a>\n'
        f"<header>\n<h1>{_e(heading)}</h1>\n<p class='subtitle'>{_e(subtitle)}</p>\n"
        f"{verdict}\n</header>\n<main id='main'>\n{body}\n</main>\n"
        f"<footer><p class='subtitle'>Written by dynconform {generator}. The report's data "
        f"is embedded in this file as JSON (element <code>#{DATA_ID}</code>).</p></footer>\n"
        f'<script type="application/json" id="{DATA_ID}">{embed_json(data)}</script>\n'
        f"<script>{js}</script>\n</body>\n</html>\n"
    )


def _verdict(passed: bool, word_pass: str, word_fail: str, text: str) -> str:
    cls, word = ("pass", word_pass) if passed else ("fail", word_fail)
    return (
        f'<section id="verdict" class="verdict {cls}" aria-label="Verdict">'
        f"<strong>{_e(word)}</strong><span>{_e(text)}</span></section>"
    )


# -- conformance --------------------------------------------------------------------------


def _reproduce(check: CheckResult, seed: int) -> str:
    if check.reproduce:
        return check.reproduce
    return shlex.join(["dynconform", "run", "--check", check.id, "--seed", str(seed)])


def _violation_items(violations: Sequence[Mapping[str, Any]]) -> str:
    if not violations:
        return ""
    items = []
    for v in violations:
        where = f" at <code>{_e(v['pointer'])}</code>" if v.get("pointer") else ""
        contract = f" ({_e(v['contract'])})" if v.get("contract") else ""
        items.append(
            f"<li><code>{_e(v.get('rule', ''))}</code>{where}{contract}: "
            f"{_e(v.get('message', ''))}</li>"
        )
    return "<p><b>Violations:</b></p><ul>" + "".join(items) + "</ul>"


def _failure(check: CheckResult, seed: int) -> str:
    if check.blocking:
        kind, cls = "blocking", "failure"
    elif check.known_deviation is not None:
        kind, cls = "known deviation", "failure nonblocking"
    else:
        kind, cls = check.severity, "failure nonblocking"
    parts = [
        f'<article class="{cls}" data-check="{_e(check.id)}">',
        f"<h3><code>{_e(check.id)}</code> {_badge(check.status)} {_badge(kind, 'x')}</h3>",
        f"<p>{_e(check.title)}</p>" if check.title else "",
        f"<p><b>Reason:</b> {_e(check.reason or 'no reason recorded')}</p>",
    ]
    if check.known_deviation is not None:
        parts.append(f"<p><b>Known deviation:</b> {_e(check.known_deviation)}</p>")
    parts.append(_violation_items(check.violations))
    parts.append(
        "<p><b>Reproduce:</b></p>"
        f"<pre><code>{_e(_reproduce(check, seed))}</code></pre>"
        f"<p class='subtitle'>Profiles: {_e(', '.join(check.profiles) or '-')} · "
        f"{_e(check.level)} · {_e(check.severity)}"
        + (f" · contracts: {_e(', '.join(check.contracts))}" if check.contracts else "")
        + (f" · rules: {_e(', '.join(check.rules))}" if check.rules else "")
        + "</p></article>"
    )
    return "".join(parts)


def _profile_chart(report: ConformanceReport) -> str:
    rows = []
    for p in report.profiles:
        core, ext = p.core.statistics, p.extended.statistics
        rows.append(
            (
                p.name,
                [
                    core.passed + ext.passed,
                    core.failed + ext.failed,
                    core.error + ext.error,
                    core.skipped + ext.skipped,
                ],
            )
        )
    svg = stacked_bars(
        "chart-profiles", "Check results per profile", rows, _STATUS_SERIES, unit="checks"
    )
    table = _table(
        "Check results per profile",
        ["profile", *(s.name for s in _STATUS_SERIES)],
        [(name, *counts) for name, counts in rows],
        numeric=len(_STATUS_SERIES),
    )
    return _figure(svg, "Results per profile (core and extended checks together).", table)


def _latency(report: ConformanceReport) -> str:
    if not report.measurements:
        return ""
    boxes = []
    for name in sorted(report.measurements):
        m = report.measurements[name]
        pct = dict(m.percentiles)
        boxes.append(
            Box(
                name=name,
                count=m.count,
                min=m.min,
                p50=pct.get(50, m.mean),
                p90=pct.get(90, m.max),
                p99=pct.get(99, m.max),
                mean=m.mean,
                max=m.max,
                unit=m.unit,
            )
        )
    svg = box_plot("chart-latency", "Latency per series", boxes)
    table = _table(
        "Latency per series",
        ["series", "unit", "n", "min", "p50", "p90", "p99", "mean", "max"],
        [(b.name, b.unit, b.count, b.min, b.p50, b.p90, b.p99, b.mean, b.max) for b in boxes],
        numeric=7,
    )
    caption = (
        "Latency of successful responses: whiskers span min to max, the box p50 to p90, "
        "a red tick marks p99 and a dot the mean."
    )
    return "<section id='latency'><h2>Latency</h2>" + _figure(svg, caption, table) + "</section>"


def _checks_table(report: ConformanceReport) -> str:
    filters = _Filters(
        [
            ("status", "Status", CHECK_STATUSES),
            ("profile", "Profile", [p.name for p in report.profiles]),
            ("level", "Level", ("core", "extended")),
        ]
    )
    ordered = sorted(report.checks, key=lambda c: (_STATUS_ORDER.get(c.status, 9), c.id))
    rows = []
    for c in ordered:
        attrs = filters.attrs({"status": [c.status], "profile": c.profiles, "level": [c.level]})
        note = f" (known deviation: {c.known_deviation})" if c.known_deviation else ""
        cells = (
            f"<td><code>{_e(c.id)}</code><br>{_e(c.title)}</td>"
            f"<td>{_badge(c.status)}</td>"
            f"<td>{_e(', '.join(c.profiles))}</td>"
            f"<td>{_e(c.level)}</td><td>{_e(c.severity)}</td>"
            f"<td class='num'>{c.duration:.2f}</td>"
            f"<td>{_e(c.reason + note)}</td>"
        )
        rows.append((attrs, cells))
    head = ["check", "status", "profiles", "level", "severity", "seconds", "reason"]
    return _filtered_table("checks", filters, head, rows)


def _conformance(report: ConformanceReport, data: Mapping[str, Any]) -> str:
    impl = report.implementation
    stats = report.statistics
    blocking = [c for c in report.checks if c.blocking]
    failing = sorted(
        (c for c in report.checks if c.status in ("failed", "error")),
        key=lambda c: (not c.blocking, c.id),
    )
    if report.passed:
        text = (
            f"every required check passed ({stats.passed} passed, {stats.skipped} skipped, "
            f"{stats.known_deviations} known deviations)"
        )
    else:
        text = f"{len(blocking)} required check(s) failed or errored, of {stats.total}"
    verdict = _verdict(report.passed, "PASSED", "FAILED", text)
    impl_name = f"{impl.name} {impl.version}"
    facts = _facts(
        [
            ("implementation", impl_name),
            ("backend", impl.backend),
            ("topology", impl.topology),
            *sorted(impl.details.items()),
            ("date", report.date),
            ("seed", report.seed),
            ("duration", _seconds(report.duration)),
            ("expectations", report.expectations),
        ]
    )
    body = [
        _stats(
            [
                ("checks", stats.total),
                ("passed", stats.passed),
                ("failed", stats.failed),
                ("error", stats.error),
                ("skipped", stats.skipped),
                ("known deviations", stats.known_deviations),
            ]
        ),
        facts,
        f"<section id='failures'><h2>Failures ({len(failing)})</h2>",
        "".join(_failure(c, report.seed) for c in failing)
        or "<p class='empty'>No check failed.</p>",
        "</section>",
        "<section id='profiles'><h2>Profiles</h2>",
        _profile_chart(report),
        _table(
            "Profile outcomes",
            ["profile", "core", "extended", "unsupported features"],
            [
                (
                    p.name,
                    p.core.result,
                    p.extended.result,
                    ", ".join(p.unsupported_features) or "-",
                )
                for p in report.profiles
            ],
        ),
        "</section>",
        _latency(report),
        "<section id='checks'><h2>All checks</h2>",
        _checks_table(report),
        "</section>",
        "<section id='run'><h2>Run details</h2>",
        "<details><summary>Timeouts, taps and metadata</summary>",
        "<pre><code>"
        + _e(
            json.dumps(
                {k: data.get(k) for k in ("metadata", "timeouts", "taps")},
                indent=2,
                ensure_ascii=False,
            )
        )
        + "</code></pre></details></section>",
    ]
    return _page(
        f"dynconform: {'PASSED' if report.passed else 'FAILED'} \u2013 {impl_name}",
        "Conformance report",
        f"{impl_name} ({impl.backend}, {impl.topology}) \u2013 {report.date}",
        verdict,
        "\n".join(body),
        data,
    )


# -- stability ----------------------------------------------------------------------------


def _step_name(step: StabilityStep) -> str:
    return f"{step.from_version} \u2192 {step.to_version}"


def _diff_command(report: StabilityReport, step: StabilityStep, domain: str) -> str:
    """The command that shows one step's changes of one domain again."""
    group = "surfaces" if domain == "surface" else "api"
    old, new = (f"pypi:{report.package}=={v}" for v in (step.from_version, step.to_version))
    return shlex.join(["dynconform", group, "diff", old, new])


def _finding_article(f: StabilityFinding) -> str:
    where = f" · {_e(f.location)}" if f.location else ""
    change = "".join(
        f"<b>{label}:</b> <code>{_e(value)}</code> "
        for label, value in (("Was", f.old), ("Now", f.new))
        if value is not None
    )
    return (
        f'<article class="failure" data-finding="{_e(f.display_path)}">'
        f"<h4><code>{_e(f.display_path)}</code> {_badge(f.verdict)} {_badge(f.tier, 'x')}</h4>"
        f"<p>{_e(f.message)}</p>"
        f"<p><b>Reason:</b> {_e(f.reason or 'no deprecation period was honoured')}</p>"
        + (f"<p>{change}</p>" if change else "")
        + f"<p class='subtitle'>{_e(f.kind)} · {_e(f.domain)}{where}</p></article>"
    )


def _step_violations(report: StabilityReport, step: StabilityStep) -> str:
    """One release step's policy violations and expired waivers, with the command that
    shows them again."""
    found = [f for f in step.findings if f.verdict == "violation"]
    expired = [w for w in step.waivers if w.state == "expired"]
    if not found and not expired:
        return ""
    commands = sorted({_diff_command(report, step, f.domain) for f in found})
    parts = [
        f"<h3>{_e(_step_name(step))}: {len(found)} violation(s), "
        f"{len(expired)} expired waiver(s)</h3>"
    ]
    if commands:
        parts.append(
            "<p><b>Reproduce:</b></p><pre><code>" + "\n".join(map(_e, commands)) + "</code></pre>"
        )
    parts += [_finding_article(f) for f in found]
    parts += [
        f'<article class="failure"><h4>Waiver <code>{_e(w.path)}</code> '
        f"{_badge('expired')}</h4><p>{_e(w.reason)}</p>"
        f"<p class='subtitle'>expired {_e(w.expires or '')}</p></article>"
        for w in expired
    ]
    return "".join(parts)


def _tier_chart(report: StabilityReport, tiers: Sequence[str]) -> str:
    """Findings per tier of each step; ``tiers`` in the order of the report's counts."""
    series = [Series(t, *_TIER_COLORS.get(t, ("#666666", "#ffffff"))) for t in tiers]
    rows = []
    for s in report.steps:
        per_tier = Counter(f.tier for f in s.findings)
        rows.append((_step_name(s), [per_tier[t] for t in tiers]))
    svg = stacked_bars(
        "chart-tiers", "Findings per tier and release", rows, series, unit="findings"
    )
    table = _table(
        "Findings per tier and release",
        ["release", *tiers],
        [(name, *counts) for name, counts in rows],
        numeric=len(tiers),
    )
    return _figure(svg, "Findings of every kind (additions included) per release step.", table)


def _findings_table(report: StabilityReport) -> str:
    filters = _Filters(
        [
            ("verdict", "Verdict", VERDICTS),
            ("tier", "Tier", TIERS),
            ("change", "Change", CHANGES),
            ("release", "Release", [_step_name(s) for s in report.steps]),
        ]
    )
    rows = []
    for step in report.steps:
        name = _step_name(step)
        for f in sorted(step.findings, key=lambda f: (_VERDICT_ORDER[f.verdict], f.path)):
            attrs = filters.attrs(
                {"verdict": [f.verdict], "tier": [f.tier], "change": [f.change], "release": [name]}
            )
            waiver = f" (waiver: {f.waiver_reason})" if f.waiver_reason else ""
            cells = (
                f"<td>{_e(name)}</td><td><code>{_e(f.display_path)}</code></td>"
                f"<td>{_e(f.tier)}</td><td>{_e(f.change)}</td><td>{_badge(f.verdict)}</td>"
                f"<td>{_e(f.kind)}</td><td>{_e(f.message)}{_e(waiver)}</td>"
            )
            rows.append((attrs, cells))
    head = ["release", "object", "tier", "change", "verdict", "kind", "message"]
    return _filtered_table("findings", filters, head, rows)


def _stability(report: StabilityReport, data: Mapping[str, Any]) -> str:
    violations = [(s, f) for s in report.steps for f in s.findings if f.verdict == "violation"]
    expired = [(s, w) for s in report.steps for w in s.waivers if w.state == "expired"]
    totals = report.counts
    breaking = sum(c.breaking for c in totals.values())
    if report.passed:
        text = (
            f"no policy violation over {len(report.steps)} release step(s) "
            f"({len(report.findings)} findings, {breaking} breaking)"
        )
    else:
        text = (
            f"{len(violations)} policy violation(s) and {len(expired)} expired waiver(s) over "
            f"{len(report.steps)} release step(s)"
        )
    verdict = _verdict(report.passed, "PASS", "FAIL", text)
    periods = ", ".join(
        f"{tier}: {'none' if n is None else n}" for tier, n in report.deprecation_releases.items()
    )
    waivers = [(s, w) for s in report.steps for w in s.waivers]
    count_keys = ("added", "deprecated", "removed", "changed", "breaking", "violation")
    body = [
        _stats(
            [
                ("release steps", len(report.steps)),
                ("findings", len(report.findings)),
                ("breaking", breaking),
                ("violations", len(violations)),
                ("expired waivers", len(expired)),
            ]
        ),
        _facts(
            [
                ("package", report.package),
                ("releases", f"{report.from_version} \u2192 {report.to_version}"),
                ("tiers", report.tiers_origin),
                ("deprecation periods (releases)", periods),
                ("date", report.date),
            ]
        ),
        f"<section id='failures'><h2>Policy violations ({len(violations) + len(expired)})</h2>",
        "".join(_step_violations(report, s) for s in report.steps)
        or "<p class='empty'>No policy violation.</p>",
        "</section>",
        "<section id='tiers'><h2>Findings per tier</h2>",
        _tier_chart(report, list(totals)),
        _table(
            "Totals per tier",
            ["tier", *count_keys],
            [
                (tier, *(getattr(c, k) for k in count_keys))
                for tier, c in totals.items()
                if not c.empty
            ],
            numeric=len(count_keys),
        ),
        "</section>",
        "<section id='findings'><h2>All findings</h2>",
        _findings_table(report),
        "</section>",
    ]
    if waivers:
        body.append("<section id='waivers'><h2>Waivers</h2>")
        body.append(
            _table(
                "Waivers",
                ["release", "object", "state", "expires", "reason", "matched"],
                [
                    (_step_name(s), w.path, w.state, w.expires or "-", w.reason, w.matched)
                    for s, w in waivers
                ],
                numeric=1,
            )
        )
        body.append("</section>")
    word = "PASS" if report.passed else "FAIL"
    return _page(
        f"dynconform: {word} \u2013 {report.package} {report.from_version}..{report.to_version}",
        "Stability report",
        f"{report.package} {report.from_version} \u2192 {report.to_version} \u2013 {report.date}",
        verdict,
        "\n".join(body),
        data,
    )


# -- tap ----------------------------------------------------------------------------------


def _tap(report: TapReport, data: Mapping[str, Any]) -> str:
    n = report.violation_count
    text = f"{report.events} events and {report.record_puts + report.record_deletes} records, " + (
        "no rule broken" if report.passed else f"{n} violation(s)"
    )
    verdict = _verdict(report.passed, "PASSED", "FAILED", text)
    by_contract = sorted(report.by_contract.items())
    svg = stacked_bars(
        "chart-contracts",
        "Messages per contract",
        [(name, [count]) for name, count in by_contract],
        [Series("messages", "#0072B2")],
        unit="messages",
    )
    table = _table("Messages per contract", ["contract", "messages"], by_contract, numeric=1)
    filters = _Filters([("source", "Source", ()), ("rule", "Rule", ())])
    rows = []
    for v in report.violations:
        attrs = filters.attrs({"source": [v.source], "rule": [v.rule]})
        cells = (
            f"<td>{_e(v.source)}</td><td><code>{_e(v.rule)}</code></td>"
            f"<td>{_e(v.contract)}</td><td><code>{_e(v.pointer)}</code></td>"
            f"<td class='num'>{_e('' if v.index is None else v.index)}</td>"
            f"<td>{_e(v.where)}</td><td>{_e(v.message)}</td>"
        )
        rows.append((attrs, cells))
    head = ["source", "rule", "contract", "pointer", "index", "where", "message"]
    notes = "".join(f"<li>{_e(note)}</li>" for note in report.notes)
    body = [
        _stats(
            [
                ("events", report.events),
                ("record puts", report.record_puts),
                ("record deletes", report.record_deletes),
                ("violations", n),
                ("events/s", f"{report.events_per_second:.1f}"),
            ]
        ),
        _facts(
            [
                *((f"source: {k}", v) for k, v in sorted(report.source.items())),
                ("duration", _seconds(report.seconds)),
                ("stopped", report.stopped),
                ("date", report.date),
            ]
        ),
        f"<section id='failures'><h2>Violations by rule ({n})</h2>",
        _table(
            "Violations by rule", ["rule", "count"], sorted(report.violations_by_rule.items()), 1
        )
        if n
        else "<p class='empty'>No rule broken.</p>",
        "</section>",
        f"<section id='notes'><h2>Notes</h2><ul>{notes}</ul></section>" if notes else "",
        "<section id='contracts'><h2>Messages per contract</h2>",
        _figure(svg, "Events and records validated, per contract.", table),
        "</section>",
        "<section id='violations'><h2>First violations</h2>",
        _filtered_table("violations", filters, head, rows),
        "</section>",
    ]
    return _page(
        f"dynconform tap: {'PASSED' if report.passed else 'FAILED'}",
        "Tap report",
        f"{report.date}",
        verdict,
        "\n".join(body),
        data,
    )


# -- entry points -------------------------------------------------------------------------


def html_report(report: Report) -> str:
    """The report as one self-contained HTML page (after the redaction pass)."""
    clean, data = _redacted(report)
    if isinstance(clean, ConformanceReport):
        return _conformance(clean, data)
    if isinstance(clean, StabilityReport):
        return _stability(clean, data)
    return _tap(clean, data)


def write_html(report: Report, path: Path) -> Path:
    """Write :func:`html_report` to ``path`` (parent directories created); return ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html_report(report), encoding="utf-8")
    return path
