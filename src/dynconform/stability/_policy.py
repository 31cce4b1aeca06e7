"""The tier-aware policy: which breaking changes are allowed, waived, reported or violations.

A breaking change of an object in a tier with a deprecation period of N releases is allowed
only when the object (a containing object, or for parameter changes the parameter) was marked
deprecated at least N releases before the release that breaks it. Deprecated in the old
release and broken in the next one counts as one release; ``api history`` knows when each
deprecation first appeared, and a ``.. deprecated:: VERSION`` directive names it too. Tiers
whose period is ``None`` (experimental and internal by default) are reported, never failed.
Periods can also be set per surface kind (the part of a finding path before ``:``, e.g.
``metric`` or ``cli``), which then win over the per-tier ones.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from dynconform.stability._findings import Finding, Status, parent_path
from dynconform.stability._model import API_VERSION, ApiObject, Deprecation, Snapshot, Tier
from dynconform.stability._waivers import Waiver

REPORT_KIND = "ApiDiffReport"
_PARAM_KINDS = frozenset(
    {
        "parameter-removed",
        "parameter-moved",
        "parameter-kind-changed",
        "parameter-default-changed",
        "parameter-now-required",
        "parameter-annotation-changed",
    }
)


_VERSION = re.compile(
    r"^v?(\d+(?:\.\d+)*)"
    r"(?:[-_.]?(a|alpha|b|beta|c|rc|pre|preview)[-_.]?(\d*))?"
    r"(?:[-_.]?(post|rev|r)[-_.]?(\d*))?"
    r"(?:[-_.]?(dev)[-_.]?(\d*))?$"
)
_PRE_RANK = {"a": 0, "alpha": 0, "b": 1, "beta": 1, "c": 2, "rc": 2, "pre": 2, "preview": 2}


def version_key(version: str) -> tuple[int, ...]:
    """A PEP 440 style sort key: 1.0.dev1 < 1.0a1 < 1.0rc1 < 1.0 < 1.0.post1 < 1.0.1."""
    m = _VERSION.match(version.strip().lower())
    if m is None:
        return (-1, *(ord(c) for c in version))
    release = [int(x) for x in m.group(1).split(".")]
    release += [0] * (6 - len(release))
    pre, post, dev = m.group(2), m.group(4), m.group(6)
    phase = 1 if pre else 0 if dev and not post else 2
    return (
        *release[:6],
        phase,
        _PRE_RANK.get(pre or "", 0),
        int(m.group(3) or 0),
        int(m.group(5) or 0) + 1 if post else 0,
        0 if dev else 1,
        int(m.group(7) or 0),
    )


@dataclass(slots=True)
class DeprecationHistory:
    """When each deprecation first appeared, over an ordered list of releases."""

    releases: list[str] = field(default_factory=list)
    first_seen: dict[str, str] = field(default_factory=dict)

    def record(self, snapshot: Snapshot) -> None:
        version = snapshot.version or snapshot.source
        if version not in self.releases:
            self.releases.append(version)
        for obj in snapshot:
            if obj.deprecated:
                self.first_seen.setdefault(obj.path, version)
            for p in obj.params:
                if p.deprecated:
                    self.first_seen.setdefault(f"{obj.path}({p.name})", version)


@dataclass(frozen=True, slots=True)
class WaiverUse:
    waiver: Waiver
    used: int
    expired: bool

    @property
    def state(self) -> str:
        return "expired" if self.expired else "used" if self.used else "unused"

    def to_dict(self) -> dict[str, Any]:
        return {**self.waiver.to_dict(), "state": self.state, "matched": self.used}


@dataclass(slots=True)
class ApiReport:
    """The verdict on one API change: findings with statuses, and the waivers' fate."""

    old: Snapshot
    new: Snapshot
    findings: list[Finding]
    periods: dict[Tier, int | None]
    waivers: list[WaiverUse] = field(default_factory=list)
    tiers_origin: str = "defaults"
    kind_periods: dict[str, dict[Tier, int | None]] = field(default_factory=dict)

    @property
    def violations(self) -> list[Finding]:
        return [f for f in self.findings if f.status is Status.VIOLATION]

    @property
    def expired_waivers(self) -> list[WaiverUse]:
        return [w for w in self.waivers if w.expired]

    @property
    def ok(self) -> bool:
        return not self.violations and not self.expired_waivers

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def summary(self) -> dict[str, dict[str, int]]:
        """Counts per tier: breaking, each status, and additions."""
        out: dict[str, dict[str, int]] = {}
        for tier in sorted(Tier, key=lambda t: -t.rank):
            row = {"breaking": 0, "additions": 0, "warnings": 0}
            row.update({s.value: 0 for s in (Status.VIOLATION, Status.ALLOWED, Status.WAIVED)})
            row[Status.REPORTED.value] = 0
            out[tier.value] = row
        for f in self.findings:
            row = out[f.tier.value]
            if f.breaking:
                row["breaking"] += 1
                row[f.status.value] += 1
            elif f.status is Status.WARNING:
                row["warnings"] += 1
            elif f.kind in ("object-added", "surface-added", "contract-added"):
                row["additions"] += 1
        return out

    def _policy(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "tiers": self.tiers_origin,
            "deprecationReleases": {t.value: n for t, n in self.periods.items()},
        }
        if self.kind_periods:
            out["deprecationReleasesByKind"] = {
                kind: {t.value: n for t, n in table.items()}
                for kind, table in sorted(self.kind_periods.items())
            }
        return out

    def to_dict(self) -> dict[str, Any]:
        def side(s: Snapshot) -> dict[str, Any]:
            return {
                "source": s.source,
                "package": s.package,
                "version": s.version,
                "objects": len(s),
            }

        return {
            "apiVersion": API_VERSION,
            "kind": REPORT_KIND,
            "verdict": "pass" if self.ok else "fail",
            "old": side(self.old),
            "new": side(self.new),
            "policy": self._policy(),
            "summary": self.summary(),
            "findings": [f.to_dict() for f in self.findings],
            "waivers": [w.to_dict() for w in self.waivers],
        }


def surface_kind(finding: Finding) -> str | None:
    """The surface kind of a finding path (``metric:x`` -> ``metric``), if it has one."""
    head, colon, _ = finding.path.partition(":")
    return head if colon and "." not in head else None


def _deprecation_of(snapshot: Snapshot, finding: Finding) -> tuple[str, Deprecation] | None:
    """The deprecation that covers a finding in the old snapshot: parameter, object, container
    (under any of the object's public paths)."""
    for lead in finding.paths:
        obj = snapshot.get(lead)
        if obj is not None and finding.subject and finding.kind in _PARAM_KINDS:
            param = next((p for p in obj.params if p.name == finding.subject), None)
            if param is not None and param.deprecated:
                return f"{obj.path}({param.name})", Deprecation("parameter")
        path: str | None = lead
        while path:
            current: ApiObject | None = snapshot.get(path)
            if current is not None and current.deprecated:
                return path, current.deprecated
            path = parent_path(path) or None
    return None


def deprecation_age(
    key: str,
    deprecation: Deprecation,
    old: Snapshot,
    new: Snapshot,
    history: DeprecationHistory | None,
) -> int:
    """For how many releases before ``new`` the object was deprecated (at least 1 here)."""
    if history is not None and new.version in history.releases:
        since = history.first_seen.get(key)
        if since in history.releases:
            return history.releases.index(new.version) - history.releases.index(since)
    since = deprecation.since
    if since and old.version and version_key(since.lstrip("v")) < version_key(old.version):
        return 2
    return 1


def apply_policy(
    findings: Sequence[Finding],
    old: Snapshot,
    new: Snapshot,
    periods: Mapping[Tier, int | None],
    waivers: Sequence[Waiver] = (),
    *,
    today: dt.date | None = None,
    history: DeprecationHistory | None = None,
    tiers_origin: str = "defaults",
    kind_periods: Mapping[str, Mapping[Tier, int | None]] | None = None,
) -> ApiReport:
    """Judge each finding under the deprecation periods (per surface kind, else per tier)
    and the waivers."""
    by_kind = {k: dict(v) for k, v in (kind_periods or {}).items()}
    today = today or dt.date.today()
    used = [0] * len(waivers)
    live = [not w.expired(today) for w in waivers]
    judged: list[Finding] = []
    for f in findings:
        if not f.breaking:
            status = Status.WARNING if f.kind == "stable-references-experimental" else Status.INFO
            judged.append(replace(f, status=status))
            continue
        matching = [i for i, w in enumerate(waivers) if w.matches(f)]
        for i in matching:
            used[i] += 1
        kind = surface_kind(f)
        table = by_kind.get(kind or "", {})
        period = table[f.tier] if f.tier in table else periods.get(f.tier)
        what = f"{f.tier} {kind}" if kind in by_kind else str(f.tier)
        if period is None:
            judged.append(replace(f, status=Status.REPORTED, reason=f"{what} tier"))
            continue
        covered = _deprecation_of(old, f)
        age = deprecation_age(covered[0], covered[1], old, new, history) if covered else 0
        if age >= period:
            via = f" ({covered[1].via})" if covered else ""
            reason = f"deprecated {age} release(s) before{via}; {what} needs {period}"
            judged.append(replace(f, status=Status.ALLOWED, reason=reason))
            continue
        waiver = next((waivers[i] for i in matching if live[i]), None)
        if waiver is not None:
            judged.append(replace(f, status=Status.WAIVED, reason=waiver.reason))
            continue
        need = f"{what} needs a deprecation {period} release(s) before"
        reason = f"{need}; deprecated {age}" if covered else f"{need}; not deprecated"
        judged.append(replace(f, status=Status.VIOLATION, reason=reason))
    uses = [WaiverUse(w, used[i], not live[i]) for i, w in enumerate(waivers)]
    return ApiReport(old, new, judged, dict(periods), uses, tiers_origin, by_kind)
