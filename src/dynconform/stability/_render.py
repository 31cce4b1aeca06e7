"""Writers for API reports: a terminal table, JSON, Markdown and GitHub annotations."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from typing import TYPE_CHECKING

from dynconform.reports import annotation
from dynconform.stability._findings import Finding, Status
from dynconform.stability._model import Tier
from dynconform.stability._policy import ApiReport

if TYPE_CHECKING:
    from dynconform.stability._api import HistoryReport

FORMATS = ("text", "json", "markdown", "github")
_ORDER = sorted(Tier, key=lambda t: -t.rank)
_MARK = {
    Status.VIOLATION: "FAIL",
    Status.ALLOWED: "ok",
    Status.WAIVED: "waived",
    Status.REPORTED: "-",
    Status.WARNING: "warn",
    Status.INFO: "+",
}


def _grouped(findings: Iterable[Finding]) -> dict[Tier, dict[str, list[Finding]]]:
    out: dict[Tier, dict[str, list[Finding]]] = defaultdict(lambda: defaultdict(list))
    for f in findings:
        out[f.tier][f.kind].append(f)
    return out


def _side(report: ApiReport, which: str) -> str:
    snap = report.old if which == "old" else report.new
    version = f" ({snap.version})" if snap.version and snap.version not in snap.source else ""
    return f"{snap.source or snap.package}{version}"


def _tier_line(
    tier: Tier, row: dict[str, int], period: int | None, *, per_kind: bool = False
) -> str:
    parts = [f"{row['breaking']} breaking"]
    detail = [
        f"{row[s.value]} {s.value}"
        for s in (Status.VIOLATION, Status.ALLOWED, Status.WAIVED, Status.REPORTED)
        if row[s.value]
    ]
    if detail:
        parts[0] += f" ({', '.join(detail)})"
    parts.append(f"{row['additions']} added")
    if row["warnings"]:
        parts.append(f"{row['warnings']} warnings")
    rule = "reported only" if period is None else f"deprecate {period} release(s) ahead"
    if per_kind and period is not None:
        rule = "deprecation period per kind"
    return f"{tier.value.upper()} [{rule}]: " + ", ".join(parts)


def render_text(report: ApiReport, *, limit: int = 10, additions: bool = False) -> str:
    """A readable table grouped by tier and kind; lists are cut at ``limit`` per kind
    except for violations, which are always listed in full."""
    lines = [f"API of {report.new.package}: {_side(report, 'old')} -> {_side(report, 'new')}"]
    periods = ", ".join(
        f"{t.value} {'-' if n is None else n}"
        for t, n in sorted(report.periods.items(), key=lambda x: -x[0].rank)
    )
    lines.append(f"tiers: {report.tiers_origin}; deprecation releases: {periods}")
    for kind, table in sorted(report.kind_periods.items()):
        cells = ", ".join(f"{t.value} {'-' if n is None else n}" for t, n in table.items())
        lines.append(f"  {kind}: {cells}")
    summary = report.summary()
    groups = _grouped(report.findings)
    for tier in _ORDER:
        row = summary[tier.value]
        if not any(row.values()):
            continue
        lines.append("")
        period = report.periods.get(tier)
        lines.append(_tier_line(tier, row, period, per_kind=bool(report.kind_periods)))
        for kind, items in sorted(groups[tier].items()):
            shown = [f for f in items if f.breaking or f.status is Status.WARNING or additions]
            if not shown:
                continue
            lines.append(f"  {kind} ({len(shown)})")
            must = [f for f in shown if f.status is Status.VIOLATION]
            rest = [f for f in shown if f.status is not Status.VIOLATION]
            listed = must + rest[: max(0, limit - len(must))] if limit >= 0 else shown
            for f in listed:
                where = f"  [{f.location}]" if f.location else ""
                also = f" (+{len(f.aliases)} other path(s))" if f.aliases else ""
                lines.append(f"    {_MARK[f.status]:<6} {f.display_path}{also}: {f.message}{where}")
                if f.status in (Status.VIOLATION, Status.WAIVED, Status.ALLOWED) and f.reason:
                    lines.append(f"           {f.reason}")
            hidden = len(shown) - len(listed)
            if hidden > 0:
                lines.append(f"    ... {hidden} more (use --max or --format json)")
    if report.waivers:
        lines.append("")
        lines.append("waivers:")
        for w in report.waivers:
            kinds = ",".join(sorted(w.waiver.kinds)) if w.waiver.kinds else "any kind"
            lines.append(
                f"  {w.state:<7} {w.waiver.path} ({kinds}), matched {w.used}: {w.waiver.reason}"
            )
    lines.append("")
    lines.append(verdict_line(report))
    return "\n".join(lines)


def verdict_line(report: ApiReport) -> str:
    if report.ok:
        return "verdict: PASS"
    parts = []
    if report.violations:
        parts.append(f"{len(report.violations)} policy violation(s)")
    if report.expired_waivers:
        parts.append(f"{len(report.expired_waivers)} expired waiver(s)")
    return "verdict: FAIL, " + ", ".join(parts)


def render_json(report: ApiReport) -> str:
    return json.dumps(report.to_dict(), indent=2, sort_keys=False) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(report: ApiReport, *, limit: int = 50) -> str:
    """A Markdown summary for pull requests and release notes."""
    icon = "PASS" if report.ok else "FAIL"
    lines = [
        f"### API check: {icon}",
        "",
        f"`{_side(report, 'old')}` -> `{_side(report, 'new')}`, tiers: {report.tiers_origin}",
        "",
        "| Tier | Breaking | Violations | Allowed | Waived | Reported | Added |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    summary = report.summary()
    for tier in _ORDER:
        r = summary[tier.value]
        lines.append(
            f"| {tier.value} | {r['breaking']} | {r['violation']} | {r['allowed']} | "
            f"{r['waived']} | {r['reported']} | {r['additions']} |"
        )
    for tier in _ORDER:
        items = [f for f in report.findings if f.tier is tier and f.breaking]
        if not items:
            continue
        items.sort(key=lambda f: (f.status is not Status.VIOLATION, f.kind, f.path))
        lines += ["", f"<details><summary>{tier.value}: {len(items)} breaking</summary>", ""]
        lines += ["| Status | Kind | Object | Change | Location |", "|---|---|---|---|---|"]
        for f in items[:limit]:
            lines.append(
                f"| {f.status.value} | {f.kind} | `{_md(f.display_path)}` | {_md(f.message)} "
                f"| {_md(f.location or '')} |"
            )
        if len(items) > limit:
            lines.append(f"| | | ... {len(items) - limit} more | | |")
        lines += ["", "</details>"]
    if report.waivers:
        lines += ["", "| Waiver | Kind | State | Reason |", "|---|---|---|---|"]
        for w in report.waivers:
            kinds = ", ".join(sorted(w.waiver.kinds)) if w.waiver.kinds else "any"
            lines.append(f"| `{w.waiver.path}` | {kinds} | {w.state} | {_md(w.waiver.reason)} |")
    lines += ["", verdict_line(report)]
    return "\n".join(lines) + "\n"


def _annotation(level: str, f: Finding, title: str) -> str:
    file: str | None = f.location or None
    line = None
    if f.location:
        path, _, number = f.location.rpartition(":")
        if path and number.isdigit():
            file, line = path, int(number)
    return annotation(level, f"{f.display_path}: {f.message}", title=title, file=file, line=line)


def render_github(report: ApiReport) -> str:
    """GitHub Actions workflow commands: errors for violations, warnings and notices else."""
    lines = []
    for f in report.findings:
        if f.status is Status.VIOLATION:
            lines.append(_annotation("error", f, f"API {f.kind} ({f.tier})"))
        elif f.status is Status.WARNING:
            lines.append(_annotation("warning", f, f"API {f.kind}"))
        elif f.status is Status.WAIVED:
            lines.append(_annotation("notice", f, f"API {f.kind} waived: {f.reason}"))
    for w in report.waivers:
        if w.expired:
            expired = w.waiver.expires.isoformat() if w.waiver.expires else ""
            msg = f"waiver for {w.waiver.path} expired on {expired}: {w.waiver.reason}"
            lines.append(annotation("error", msg, title="dynconform waiver expired"))
        elif not w.used:
            msg = f"unused waiver for {w.waiver.path}: {w.waiver.reason}"
            lines.append(annotation("warning", msg, title="dynconform unused waiver"))
    lines.append(verdict_line(report))
    return "\n".join(lines) + "\n"


def render(report: ApiReport, fmt: str, *, limit: int = 10, additions: bool = False) -> str:
    if fmt == "json":
        return render_json(report)
    if fmt == "markdown":
        return render_markdown(report, limit=max(limit, 50))
    if fmt == "github":
        return render_github(report)
    return render_text(report, limit=limit, additions=additions) + "\n"


def _step_line(step: ApiReport) -> str:
    cells = []
    for tier, row in step.summary().items():
        if not (row["breaking"] or row["additions"]):
            continue
        cell = f"{tier} {row['breaking']} breaking"
        judged = [
            f"{row[s.value]} {s.value}"
            for s in (Status.VIOLATION, Status.ALLOWED, Status.WAIVED)
            if row[s.value]
        ]
        if judged:
            cell += f" ({', '.join(judged)})"
        cells.append(f"{cell}, {row['additions']} added")
    verdict = "pass" if step.ok else "FAIL"
    return f"{step.old.version} -> {step.new.version}: {verdict}; " + (
        "; ".join(cells) or "no API changes"
    )


def render_history(report: HistoryReport, fmt: str, *, limit: int = 10) -> str:
    """One line per consecutive pair (text), or each comparison in full in another format."""
    if fmt == "json":
        return json.dumps(report.to_dict(), indent=2) + "\n"
    if fmt != "text":
        return "\n".join(render(step, fmt, limit=limit) for step in report.steps)
    lines = [_step_line(step) for step in report.steps]
    bad = sum(1 for s in report.steps if not s.ok)
    lines.append(
        f"{report.project}: {len(report.steps)} comparisons, "
        f"{len(report.history.first_seen)} deprecations tracked, "
        + ("all pass" if not bad else f"{bad} with policy violations")
    )
    return "\n".join(lines) + "\n"
