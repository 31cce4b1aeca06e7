"""Known deviations: where an implementation is expected to fail a check, and why.

An expectations file is versioned YAML::

    apiVersion: dynconform.dev/v1alpha1
    kind: ConformanceExpectations
    implementation: ai-dynamo
    versions: ["1.6.1"]
    deviations:
    - check: health.worker.ready
      topologies: [file, etcd-nats]     # optional: every topology when absent
      reason: the worker's /health stays 503 notready while every endpoint is ready
      evidence: tests/fixtures/ai-dynamo-1.6.1/etcd_nats/http_exchanges.json (worker_health)

A failed check with a matching deviation is reported as a known deviation and does not fail
the run; a deviation whose check passes is reported as no longer observed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from dynconform.contracts import InputError, yaml_problem
from dynconform.reports import API_VERSION, CheckResult

__all__ = [
    "EXPECTATIONS_KIND",
    "Deviation",
    "Expectations",
    "apply_expectations",
    "bundled_expectations",
    "load_expectations",
]

EXPECTATIONS_KIND = "ConformanceExpectations"


@dataclass(frozen=True, slots=True)
class Deviation:
    """One check an implementation is known to fail."""

    check: str
    reason: str
    topologies: tuple[str, ...] = ()
    evidence: str = ""

    def applies(self, topology: str) -> bool:
        return not self.topologies or topology in self.topologies


@dataclass(frozen=True, slots=True)
class Expectations:
    """The known deviations of one implementation."""

    implementation: str
    versions: tuple[str, ...]
    deviations: tuple[Deviation, ...]
    source: str = ""

    def for_check(self, check_id: str, topology: str) -> Deviation | None:
        for deviation in self.deviations:
            if deviation.check == check_id and deviation.applies(topology):
                return deviation
        return None


def parse_expectations(data: Any, source: str) -> Expectations:
    """Build :class:`Expectations` from parsed YAML; raises :class:`InputError`."""
    if not isinstance(data, Mapping):
        raise InputError(f"{source}: an expectations file is a mapping")
    if data.get("apiVersion") != API_VERSION or data.get("kind") != EXPECTATIONS_KIND:
        raise InputError(
            f"{source}: expected apiVersion {API_VERSION} and kind {EXPECTATIONS_KIND}"
        )
    deviations = []
    for i, raw in enumerate(data.get("deviations") or []):
        if not isinstance(raw, Mapping) or not raw.get("check") or not raw.get("reason"):
            raise InputError(f"{source}: deviation #{i} needs `check` and `reason`")
        deviations.append(
            Deviation(
                check=str(raw["check"]),
                reason=" ".join(str(raw["reason"]).split()),
                topologies=tuple(str(t) for t in raw.get("topologies") or ()),
                evidence=str(raw.get("evidence", "")),
            )
        )
    return Expectations(
        implementation=str(data.get("implementation", "")),
        versions=tuple(str(v) for v in data.get("versions") or ()),
        deviations=tuple(deviations),
        source=source,
    )


def load_expectations(path: Path) -> Expectations:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(yaml_problem(str(path), exc)) from None
    return parse_expectations(data, str(path))


def bundled_expectations(name: str) -> Expectations | None:
    """The expectations shipped for ``name`` (e.g. ``ai-dynamo-1.6.1``), if any."""
    resource = resources.files("dynconform.conformance") / "expectations" / f"{name}.yaml"
    if not resource.is_file():
        return None
    return parse_expectations(yaml.safe_load(resource.read_text("utf-8")), f"bundled:{name}")


def apply_expectations(
    results: Sequence[CheckResult], expectations: Expectations | None, topology: str
) -> list[CheckResult]:
    """Mark failures that the expectations explain; note deviations no longer observed."""
    if expectations is None:
        return list(results)
    out = []
    for result in results:
        deviation = expectations.for_check(result.id, topology)
        if deviation is None:
            out.append(result)
        elif result.status in ("failed", "error"):
            out.append(replace(result, known_deviation=deviation.reason))
        elif result.status == "passed":
            note = f"known deviation not observed (expected: {deviation.reason})"
            out.append(replace(result, reason=note))
        else:
            out.append(result)
    return out
