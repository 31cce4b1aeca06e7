"""The versioned stability report: what changed in a package's API and surfaces, release by
release, and what the tier policy made of each change.

Serialised with camelCase keys, ``apiVersion: dynconform.dev/v1alpha1`` and ``kind:
StabilityReport``::

    apiVersion: dynconform.dev/v1alpha1
    kind: StabilityReport
    metadata: {date: ..., dynconformVersion: 0.1.0}
    package: ai-dynamo
    fromVersion: 1.0.0
    toVersion: 1.6.1
    result: pass
    counts: {stable: {added: 12, removed: 0, ...}, beta: {...}, ...}
    steps:
    - {fromVersion: 1.0.0, toVersion: 1.1.0, result: pass, counts: {...}, findings: [...]}

Each finding has a ``change`` (``added``, ``deprecated``, ``removed``, ``changed`` or
``breaking``) and the policy ``verdict`` (``violation``, ``allowed``, ``waived``,
``reported``, ``warning`` or ``info``). This module knows nothing of how findings are made;
``dynconform.stability.stability_report`` builds a report from API and surface comparisons.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast, get_args

from dynconform.contracts import InputError
from dynconform.reports._model import API_VERSION, malformed, require_fields, require_kind

__all__ = [
    "CHANGES",
    "STABILITY_KIND",
    "TIERS",
    "VERDICTS",
    "Change",
    "StabilityFinding",
    "StabilityReport",
    "StabilityStep",
    "StabilityWaiver",
    "TierCounts",
    "Verdict",
    "WaiverState",
    "tier_counts",
]

STABILITY_KIND = "StabilityReport"

Change = Literal["added", "deprecated", "removed", "changed", "breaking"]
CHANGES: tuple[Change, ...] = get_args(Change)
Verdict = Literal["violation", "allowed", "waived", "reported", "warning", "info"]
VERDICTS: tuple[Verdict, ...] = get_args(Verdict)
#: strongest promise first
TIERS: tuple[str, ...] = ("stable", "beta", "experimental", "internal")
_COUNTED: tuple[str, ...] = (*CHANGES, "violation", "allowed", "waived", "reported", "warning")


@dataclass(frozen=True, slots=True)
class StabilityFinding:
    """One change of a public object or surface between two releases."""

    kind: str
    path: str
    tier: str
    change: Change
    verdict: Verdict
    message: str
    #: ``api`` (Python API), ``surface`` (CLI flags, env vars, metrics) or ``contract``
    domain: str = "api"
    breaking: bool = False
    #: why the policy decided so (deprecation age, tier, waiver)
    reason: str = ""
    #: the waiver's reason when a waiver covered this change
    waiver_reason: str | None = None
    location: str | None = None
    subject: str | None = None
    old: str | None = None
    new: str | None = None

    @property
    def display_path(self) -> str:
        return f"{self.path}({self.subject})" if self.subject else self.path

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "path": self.path,
            "tier": self.tier,
            "domain": self.domain,
            "change": self.change,
            "breaking": self.breaking,
            "verdict": self.verdict,
            "message": self.message,
        }
        if self.reason:
            out["reason"] = self.reason
        optional = {
            "waiverReason": self.waiver_reason,
            "location": self.location,
            "subject": self.subject,
            "old": self.old,
            "new": self.new,
        }
        out.update({k: v for k, v in optional.items() if v is not None})
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StabilityFinding:
        change = str(data["change"])
        verdict = str(data["verdict"])
        if change not in CHANGES:
            raise InputError(f"finding {data.get('path')!r}: unknown change {change!r}")
        if verdict not in VERDICTS:
            raise InputError(f"finding {data.get('path')!r}: unknown verdict {verdict!r}")

        def opt(key: str) -> str | None:
            value = data.get(key)
            return None if value is None else str(value)

        return cls(
            kind=str(data["kind"]),
            path=str(data["path"]),
            tier=str(data["tier"]),
            change=change,
            verdict=verdict,
            message=str(data.get("message", "")),
            domain=str(data.get("domain", "api")),
            breaking=bool(data.get("breaking", False)),
            reason=str(data.get("reason", "")),
            waiver_reason=opt("waiverReason"),
            location=opt("location"),
            subject=opt("subject"),
            old=opt("old"),
            new=opt("new"),
        )


@dataclass(frozen=True, slots=True)
class TierCounts:
    """Counts of one tier's findings: by change and by policy verdict."""

    added: int = 0
    deprecated: int = 0
    removed: int = 0
    changed: int = 0
    breaking: int = 0
    violation: int = 0
    allowed: int = 0
    waived: int = 0
    reported: int = 0
    warning: int = 0

    @classmethod
    def of(cls, findings: Iterable[StabilityFinding]) -> TierCounts:
        counts = dict.fromkeys(_COUNTED, 0)
        for f in findings:
            counts[f.change] += 1
            if f.verdict in counts:
                counts[f.verdict] += 1
        return cls(**counts)

    def __add__(self, other: TierCounts) -> TierCounts:
        return TierCounts(**{k: getattr(self, k) + getattr(other, k) for k in _COUNTED})

    @property
    def empty(self) -> bool:
        return not any(getattr(self, k) for k in _COUNTED)

    def to_dict(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in _COUNTED}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TierCounts:
        return cls(**{k: int(data.get(k, 0)) for k in _COUNTED})


def tier_counts(findings: Sequence[StabilityFinding]) -> dict[str, TierCounts]:
    """Counts per tier, every known tier present (strongest first), unknown tiers after."""
    tiers = [*TIERS, *sorted({f.tier for f in findings} - set(TIERS))]
    return {t: TierCounts.of(f for f in findings if f.tier == t) for t in tiers}


WaiverState = Literal["used", "unused", "expired"]


@dataclass(frozen=True, slots=True)
class StabilityWaiver:
    """A waiver of the policy and whether it was used or has expired."""

    path: str
    reason: str
    state: WaiverState
    matched: int = 0
    kinds: tuple[str, ...] = ()
    expires: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "path": self.path,
            "reason": self.reason,
            "state": self.state,
            "matched": self.matched,
            "kinds": list(self.kinds),
        }
        if self.expires is not None:
            out["expires"] = self.expires
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StabilityWaiver:
        state = str(data.get("state", "unused"))
        if state not in get_args(WaiverState):
            raise InputError(f"waiver {data.get('path')!r}: unknown state {state!r}")
        expires = data.get("expires")
        return cls(
            path=str(data["path"]),
            reason=str(data.get("reason", "")),
            state=cast(WaiverState, state),
            matched=int(data.get("matched", 0)),
            kinds=tuple(str(k) for k in data.get("kinds", ())),
            expires=None if expires is None else str(expires),
        )


@dataclass(frozen=True, slots=True)
class StabilityStep:
    """One release step (``from_version`` -> ``to_version``) and its findings."""

    from_version: str
    to_version: str
    findings: tuple[StabilityFinding, ...] = ()
    waivers: tuple[StabilityWaiver, ...] = ()
    #: which comparisons the step holds: ``api``, ``surfaces``
    compared: tuple[str, ...] = ("api",)

    @property
    def passed(self) -> bool:
        """No policy violation and no expired waiver."""
        return not any(f.verdict == "violation" for f in self.findings) and not any(
            w.state == "expired" for w in self.waivers
        )

    @property
    def counts(self) -> dict[str, TierCounts]:
        return tier_counts(self.findings)

    def to_dict(self) -> dict[str, Any]:
        return {
            "fromVersion": self.from_version,
            "toVersion": self.to_version,
            "result": "pass" if self.passed else "fail",
            "compared": list(self.compared),
            "counts": {t: c.to_dict() for t, c in self.counts.items()},
            "findings": [f.to_dict() for f in self.findings],
            "waivers": [w.to_dict() for w in self.waivers],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StabilityStep:
        return cls(
            from_version=str(data["fromVersion"]),
            to_version=str(data["toVersion"]),
            findings=tuple(StabilityFinding.from_dict(f) for f in data.get("findings", ())),
            waivers=tuple(StabilityWaiver.from_dict(w) for w in data.get("waivers", ())),
            compared=tuple(str(c) for c in data.get("compared", ("api",))),
        )


@dataclass(frozen=True, slots=True)
class StabilityReport:
    """The stability of a package over a range of releases, step by step."""

    package: str
    from_version: str
    to_version: str
    steps: tuple[StabilityStep, ...]
    date: str
    dynconform_version: str
    #: where tiers came from (a tiers file, the bundled one, or defaults)
    tiers_origin: str = "defaults"
    #: deprecation period per tier in releases; ``None``: reported, never failed
    deprecation_releases: Mapping[str, int | None] = field(default_factory=dict)
    #: what a reader should know: comparisons that could not be made, and why
    notes: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return all(s.passed for s in self.steps)

    @property
    def findings(self) -> tuple[StabilityFinding, ...]:
        return tuple(f for s in self.steps for f in s.findings)

    @property
    def counts(self) -> dict[str, TierCounts]:
        return tier_counts(self.findings)

    @property
    def violations(self) -> tuple[StabilityFinding, ...]:
        return tuple(f for f in self.findings if f.verdict == "violation")

    def to_dict(self) -> dict[str, Any]:
        return {
            "apiVersion": API_VERSION,
            "kind": STABILITY_KIND,
            "metadata": {"date": self.date, "dynconformVersion": self.dynconform_version},
            "package": self.package,
            "fromVersion": self.from_version,
            "toVersion": self.to_version,
            "result": "pass" if self.passed else "fail",
            "policy": {
                "tiers": self.tiers_origin,
                "deprecationReleases": dict(self.deprecation_releases),
            },
            "counts": {t: c.to_dict() for t, c in self.counts.items()},
            "steps": [s.to_dict() for s in self.steps],
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StabilityReport:
        """Read a serialised report; raises :class:`InputError` for another kind or version."""
        require_kind(data, STABILITY_KIND)
        require_fields(data, STABILITY_KIND, "package", "fromVersion", "toVersion")
        try:
            meta = data.get("metadata") or {}
            policy = data.get("policy") or {}
            periods = policy.get("deprecationReleases") or {}
            return cls(
                package=str(data["package"]),
                from_version=str(data["fromVersion"]),
                to_version=str(data["toVersion"]),
                steps=tuple(StabilityStep.from_dict(s) for s in data.get("steps", ())),
                date=str(meta.get("date", "")),
                dynconform_version=str(meta.get("dynconformVersion", "")),
                tiers_origin=str(policy.get("tiers", "defaults")),
                deprecation_releases={
                    str(k): None if v is None else int(v) for k, v in periods.items()
                },
                notes=tuple(str(n) for n in data.get("notes", ())),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise malformed(STABILITY_KIND, exc) from None
