"""The versioned conformance report: what ran against which implementation, and each result.

The serialised form (JSON or YAML) uses camelCase keys and carries ``apiVersion`` and
``kind``, like a Kubernetes object, so that a consumer can tell versions apart::

    apiVersion: dynconform.dev/v1alpha1
    kind: ConformanceReport
    implementation: {name: ai-dynamo, version: 1.6.1, backend: dynamo, topology: file}
    profiles:
    - name: core
      core: {result: success, statistics: {...}}
      extended: {result: partial, statistics: {...}, unsupportedFeatures: [...]}
    checks:
    - {id: http.stream.done-terminator, status: passed, durationSeconds: 0.05, ...}
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast, get_args

from dynconform.contracts import InputError
from dynconform.reports._measure import Measurement

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
    "profile_outcome",
]

API_VERSION = "dynconform.dev/v1alpha1"
KIND = "ConformanceReport"
_IMPLEMENTATION_FIELDS = ("name", "version", "backend", "topology")

CheckStatus = Literal["passed", "failed", "skipped", "error"]
CHECK_STATUSES: tuple[CheckStatus, ...] = get_args(CheckStatus)
Severity = Literal["required", "recommended"]
ProfileResult = Literal["success", "partial", "failure"]


@dataclass(frozen=True, slots=True)
class Implementation:
    """The system under test."""

    name: str
    version: str
    backend: str
    topology: str
    #: free-form facts about the deployment: URLs, engine, model
    details: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "backend": self.backend,
            "topology": self.topology,
            "details": dict(sorted(self.details.items())),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Implementation:
        return cls(
            name=str(data["name"]),
            version=str(data["version"]),
            backend=str(data["backend"]),
            topology=str(data["topology"]),
            details={str(k): str(v) for k, v in (data.get("details") or {}).items()},
        )


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The outcome of one check."""

    id: str
    title: str
    status: CheckStatus
    profiles: tuple[str, ...]
    severity: Severity = "required"
    #: ``core`` checks need no optional feature; ``extended`` ones do
    level: Literal["core", "extended"] = "core"
    features: tuple[str, ...] = ()
    contracts: tuple[str, ...] = ()
    rules: tuple[str, ...] = ()
    reason: str = ""
    duration: float = 0.0
    #: why this failure is expected of the implementation (an expectations file entry)
    known_deviation: str | None = None
    #: the first contract violations behind a failure, as ``Violation.to_dict()`` gives them
    violations: tuple[Mapping[str, Any], ...] = ()
    #: the command line that runs this check alone again, as the runner computed it
    reproduce: str = ""

    @property
    def blocking(self) -> bool:
        """Whether this result makes the run fail: a required check failed or errored."""
        return (
            self.status in ("failed", "error")
            and self.severity == "required"
            and self.known_deviation is None
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "title": self.title,
            "status": self.status,
            "profiles": list(self.profiles),
            "severity": self.severity,
            "level": self.level,
            "features": list(self.features),
            "contracts": list(self.contracts),
            "rules": list(self.rules),
            "reason": self.reason,
            "durationSeconds": round(self.duration, 4),
        }
        if self.known_deviation is not None:
            out["knownDeviation"] = self.known_deviation
        if self.violations:
            out["violations"] = [dict(v) for v in self.violations]
        if self.reproduce:
            out["reproduce"] = self.reproduce
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CheckResult:
        status = str(data["status"])
        if status not in CHECK_STATUSES:
            raise InputError(f"check {data.get('id')!r}: unknown status {status!r}")
        return cls(
            id=str(data["id"]),
            title=str(data.get("title", "")),
            status=status,
            profiles=tuple(str(p) for p in data.get("profiles", ())),
            severity=cast(Severity, data.get("severity", "required")),
            level=cast(Literal["core", "extended"], data.get("level", "core")),
            features=tuple(str(f) for f in data.get("features", ())),
            contracts=tuple(str(c) for c in data.get("contracts", ())),
            rules=tuple(str(r) for r in data.get("rules", ())),
            reason=str(data.get("reason", "")),
            duration=float(data.get("durationSeconds", 0.0)),
            known_deviation=data.get("knownDeviation"),
            violations=tuple(dict(v) for v in data.get("violations", ())),
            reproduce=str(data.get("reproduce", "")),
        )


@dataclass(frozen=True, slots=True)
class Statistics:
    """Counts of results by status."""

    passed: int = 0
    failed: int = 0
    skipped: int = 0
    error: int = 0
    known_deviations: int = 0

    @property
    def total(self) -> int:
        return self.passed + self.failed + self.skipped + self.error

    @classmethod
    def of(cls, results: Iterable[CheckResult]) -> Statistics:
        listed = list(results)
        counts = Counter(r.status for r in listed)
        deviations = sum(1 for r in listed if r.known_deviation and r.status != "passed")
        return cls(
            passed=counts["passed"],
            failed=counts["failed"],
            skipped=counts["skipped"],
            error=counts["error"],
            known_deviations=deviations,
        )

    def to_dict(self) -> dict[str, int]:
        return {
            "total": self.total,
            "passed": self.passed,
            "failed": self.failed,
            "skipped": self.skipped,
            "error": self.error,
            "knownDeviations": self.known_deviations,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Statistics:
        return cls(
            passed=int(data.get("passed", 0)),
            failed=int(data.get("failed", 0)),
            skipped=int(data.get("skipped", 0)),
            error=int(data.get("error", 0)),
            known_deviations=int(data.get("knownDeviations", 0)),
        )


def require_kind(data: Mapping[str, Any], kind: str) -> None:
    """Raise :class:`InputError` unless ``data`` is a ``kind`` of this :data:`API_VERSION`."""
    if data.get("apiVersion") != API_VERSION or data.get("kind") != kind:
        raise InputError(
            f"not a {kind} {API_VERSION}: apiVersion={data.get('apiVersion')!r}, "
            f"kind={data.get('kind')!r}"
        )


def require_fields(data: Mapping[str, Any], kind: str, *fields: str) -> None:
    """Raise :class:`InputError` naming the first of ``fields`` (dotted paths such as
    ``counts.events``) that ``data`` lacks or holds as null."""
    for dotted in fields:
        node: Any = data
        keys = dotted.split(".")
        for depth, key in enumerate(keys):
            if not isinstance(node, Mapping):
                parent = ".".join(keys[:depth])
                raise InputError(f"malformed {kind}: field {parent!r} is not a mapping")
            node = node.get(key)
            if node is None:
                missing = ".".join(keys[: depth + 1])
                raise InputError(f"malformed {kind}: missing field {missing!r}")


def malformed(kind: str, exc: Exception) -> InputError:
    """The one-line error for a ``kind`` whose fields do not fit the model: the missing field
    for a ``KeyError``, the reason otherwise (never a Python repr)."""
    if isinstance(exc, KeyError) and exc.args:
        return InputError(f"malformed {kind}: missing field {exc.args[0]!r}")
    return InputError(f"malformed {kind}: {exc}")


def profile_outcome(results: Sequence[CheckResult]) -> ProfileResult:
    """``failure`` if a required check failed or errored (not a known deviation); ``partial``
    if something was skipped, failed only as a known deviation or failed as a recommendation;
    ``success`` if every check passed (or the level has no check)."""
    if any(r.blocking for r in results):
        return "failure"
    if all(r.status == "passed" for r in results):
        return "success"
    return "partial"


@dataclass(frozen=True, slots=True)
class ProfileOutcome:
    """The result of one level (core or extended) of a profile."""

    result: ProfileResult
    statistics: Statistics
    failed_checks: tuple[str, ...] = ()
    skipped_checks: tuple[str, ...] = ()

    @classmethod
    def of(cls, results: Sequence[CheckResult]) -> ProfileOutcome:
        return cls(
            result=profile_outcome(results),
            statistics=Statistics.of(results),
            failed_checks=tuple(r.id for r in results if r.status in ("failed", "error")),
            skipped_checks=tuple(r.id for r in results if r.status == "skipped"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "result": self.result,
            "statistics": self.statistics.to_dict(),
            "failedChecks": list(self.failed_checks),
            "skippedChecks": list(self.skipped_checks),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProfileOutcome:
        return cls(
            result=cast(ProfileResult, data["result"]),
            statistics=Statistics.from_dict(data.get("statistics") or {}),
            failed_checks=tuple(data.get("failedChecks", ())),
            skipped_checks=tuple(data.get("skippedChecks", ())),
        )


@dataclass(frozen=True, slots=True)
class ProfileReport:
    """One profile's results, split into core (no optional feature) and extended checks."""

    name: str
    core: ProfileOutcome
    extended: ProfileOutcome
    supported_features: tuple[str, ...] = ()
    unsupported_features: tuple[str, ...] = ()

    @classmethod
    def of(
        cls, name: str, results: Sequence[CheckResult], supported: Iterable[str]
    ) -> ProfileReport:
        mine = [r for r in results if name in r.profiles]
        wanted = sorted({f for r in mine for f in r.features})
        have = set(supported)
        return cls(
            name=name,
            core=ProfileOutcome.of([r for r in mine if r.level == "core"]),
            extended=ProfileOutcome.of([r for r in mine if r.level == "extended"]),
            supported_features=tuple(f for f in wanted if f in have),
            unsupported_features=tuple(f for f in wanted if f not in have),
        )

    def to_dict(self) -> dict[str, Any]:
        extended = self.extended.to_dict()
        extended["supportedFeatures"] = list(self.supported_features)
        extended["unsupportedFeatures"] = list(self.unsupported_features)
        return {"name": self.name, "core": self.core.to_dict(), "extended": extended}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProfileReport:
        extended = data.get("extended") or {}
        return cls(
            name=str(data["name"]),
            core=ProfileOutcome.from_dict(data["core"]),
            extended=ProfileOutcome.from_dict(extended),
            supported_features=tuple(extended.get("supportedFeatures", ())),
            unsupported_features=tuple(extended.get("unsupportedFeatures", ())),
        )


@dataclass(frozen=True, slots=True)
class ConformanceReport:
    """Everything one conformance run found."""

    implementation: Implementation
    profiles: tuple[ProfileReport, ...]
    checks: tuple[CheckResult, ...]
    date: str
    dynconform_version: str
    seed: int
    duration: float = 0.0
    timeouts: Mapping[str, float] = field(default_factory=dict)
    #: what the taps saw over the whole run: counts of records, events and violations
    taps: Mapping[str, Any] = field(default_factory=dict)
    #: the expectations file applied, if any
    expectations: str | None = None
    #: latency series recorded during the run (``http.chat.ttft``, ...), by name
    measurements: Mapping[str, Measurement] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        implementation: Implementation,
        checks: Sequence[CheckResult],
        *,
        profiles: Sequence[str],
        supported_features: Iterable[str],
        date: str,
        dynconform_version: str,
        seed: int,
        duration: float = 0.0,
        timeouts: Mapping[str, float] | None = None,
        taps: Mapping[str, Any] | None = None,
        expectations: str | None = None,
        measurements: Iterable[Measurement] = (),
    ) -> ConformanceReport:
        """Assemble a report, computing each profile's outcome from the check results."""
        supported = tuple(supported_features)
        return cls(
            implementation=implementation,
            profiles=tuple(ProfileReport.of(p, checks, supported) for p in profiles),
            checks=tuple(checks),
            date=date,
            dynconform_version=dynconform_version,
            seed=seed,
            duration=duration,
            timeouts=dict(timeouts or {}),
            taps=dict(taps or {}),
            expectations=expectations,
            measurements={m.name: m for m in sorted(measurements, key=lambda m: m.name)},
        )

    @property
    def statistics(self) -> Statistics:
        return Statistics.of(self.checks)

    @property
    def passed(self) -> bool:
        """Whether every required check passed (known deviations excepted)."""
        return not any(r.blocking for r in self.checks)

    def check(self, check_id: str) -> CheckResult:
        for result in self.checks:
            if result.id == check_id:
                return result
        raise KeyError(check_id)

    def to_dict(self) -> dict[str, Any]:
        stats: dict[str, Any] = dict(self.statistics.to_dict())
        stats["durationSeconds"] = round(self.duration, 3)
        out: dict[str, Any] = {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {
                "date": self.date,
                "dynconformVersion": self.dynconform_version,
                "seed": self.seed,
            },
            "implementation": self.implementation.to_dict(),
            "result": "passed" if self.passed else "failed",
            "statistics": stats,
            "profiles": [p.to_dict() for p in self.profiles],
            "checks": [c.to_dict() for c in self.checks],
            "timeouts": dict(sorted(self.timeouts.items())),
            "taps": dict(self.taps),
        }
        if self.expectations is not None:
            out["metadata"]["expectations"] = self.expectations
        if self.measurements:
            out["measurements"] = {
                name: self.measurements[name].to_dict() for name in sorted(self.measurements)
            }
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ConformanceReport:
        """Read a serialised report; raises :class:`InputError` for another kind or version."""
        require_kind(data, KIND)
        require_fields(data, KIND, *(f"implementation.{k}" for k in _IMPLEMENTATION_FIELDS))
        try:
            meta = data.get("metadata") or {}
            stats = data.get("statistics") or {}
            return cls(
                implementation=Implementation.from_dict(data["implementation"]),
                profiles=tuple(ProfileReport.from_dict(p) for p in data.get("profiles", ())),
                checks=tuple(CheckResult.from_dict(c) for c in data.get("checks", ())),
                date=str(meta.get("date", "")),
                dynconform_version=str(meta.get("dynconformVersion", "")),
                seed=int(meta.get("seed", 0)),
                duration=float(stats.get("durationSeconds", 0.0)),
                timeouts={str(k): float(v) for k, v in (data.get("timeouts") or {}).items()},
                taps=dict(data.get("taps") or {}),
                expectations=meta.get("expectations"),
                measurements={
                    str(name): Measurement.from_dict(str(name), value)
                    for name, value in (data.get("measurements") or {}).items()
                },
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise malformed(KIND, exc) from None
