"""Semantic rules of the metrics contracts: an exposition parses and agrees with the registry.

Both exposition contracts (frontend and worker) share these rules; the component only decides
which registry families must be present. The instance is the raw text, so rules report the
pointer ``""`` and name the family in the message.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from functools import lru_cache
from itertools import pairwise
from typing import Any

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from dynconform.contracts._rules import Correlator, Issue, Rule, correlation_rule
from dynconform.contracts.metrics_registry import Component, MetricFamily, load_registry

#: Exposition contract -> the component it describes.
EXPOSITIONS: dict[str, Component] = {
    "metrics.frontend-exposition": "frontend",
    "metrics.worker-exposition": "worker",
}
_CONTRACTS = tuple(EXPOSITIONS)
#: prometheus-client reports an undeclared type as ``unknown``; the text format says ``untyped``.
_TYPE_NAMES = {"unknown": "untyped"}

Check = Callable[[Component, tuple[Metric, ...]], Iterable[Issue]]


@lru_cache(maxsize=8)
def parse_exposition(text: str) -> tuple[Metric, ...] | str:
    """The families of a text exposition, or the parser's error message."""
    try:
        return tuple(text_string_to_metric_families(text))
    except Exception as exc:  # the parser raises ValueError, IndexError, TypeError, ...
        return f"{type(exc).__name__}: {exc}"


def _registered(families: tuple[Metric, ...]) -> Iterator[tuple[Metric, MetricFamily]]:
    registry = load_registry()
    for family in families:
        entry = registry.find(family.name, family.type)
        if entry is not None:
            yield family, entry


def _per_exposition(check: Check) -> Callable[[], Correlator]:
    """A correlator that judges each exposition on its own, given its component."""

    class _Checker:
        def observe(self, contract: str, instance: Any, index: int | None) -> Iterable[Issue]:
            parsed = parse_exposition(instance)
            if isinstance(parsed, str):
                return ()
            return list(check(EXPOSITIONS[contract], parsed))

        def finish(self) -> Iterable[Issue]:
            return ()

    return _Checker


class _Parses:
    def observe(self, contract: str, instance: Any, index: int | None) -> Iterable[Issue]:
        parsed = parse_exposition(instance)
        return [("", f"not a valid text exposition: {parsed}")] if isinstance(parsed, str) else []

    def finish(self) -> Iterable[Issue]:
        return ()


_exposition_parses = correlation_rule(
    "metrics.exposition-parses",
    contracts=_CONTRACTS,
    summary="the text parses as a Prometheus exposition (prometheus-client's parser)",
)(_Parses)


def _family_type(component: Component, families: tuple[Metric, ...]) -> Iterator[Issue]:
    for family, entry in _registered(families):
        exposed = _TYPE_NAMES.get(family.type, family.type)
        if exposed != entry.type:
            yield "", f"family {entry.name} is a {exposed}, the registry says {entry.type}"


def _required_labels(component: Component, families: tuple[Metric, ...]) -> Iterator[Issue]:
    for family, entry in _registered(families):
        lacking: dict[str, int] = {}
        for sample in family.samples:
            for label in entry.required_labels:
                if label not in sample.labels:
                    lacking[label] = lacking.get(label, 0) + 1
        for label, count in sorted(lacking.items()):
            yield (
                "",
                (
                    f"family {entry.name}: {count} of {len(family.samples)} samples lack "
                    f"required label {label!r}"
                ),
            )


def _bucket_bound(sample_labels: dict[str, str]) -> float:
    try:
        return float(sample_labels["le"])
    except (KeyError, ValueError):
        return math.nan


def _histogram_cumulative(component: Component, families: tuple[Metric, ...]) -> Iterator[Issue]:
    for family in families:
        if family.type != "histogram":
            continue
        buckets: dict[frozenset[tuple[str, str]], list[tuple[float, float]]] = {}
        counts: dict[frozenset[tuple[str, str]], float] = {}
        for sample in family.samples:
            series = frozenset((k, v) for k, v in sample.labels.items() if k != "le")
            if sample.name == family.name + "_bucket":
                buckets.setdefault(series, []).append((_bucket_bound(sample.labels), sample.value))
            elif sample.name == family.name + "_count":
                counts[series] = sample.value
        for series in sorted(buckets.keys() | counts.keys(), key=sorted):
            where = (
                f"histogram {family.name}{{{', '.join(f'{k}={v!r}' for k, v in sorted(series))}}}"
            )
            ordered = sorted(buckets.get(series, []), key=lambda b: b[0])
            for (low_le, low), (high_le, high) in pairwise(ordered):
                if high < low:
                    yield "", f"{where}: bucket le={high_le:g} ({high:g}) < le={low_le:g} ({low:g})"
            infinite = [value for bound, value in ordered if bound == math.inf]
            if not infinite:
                yield "", f'{where}: no le="+Inf" bucket'
            elif series not in counts:
                yield "", f"{where}: no _count sample"
            elif infinite[-1] != counts[series]:
                yield "", f'{where}: le="+Inf" bucket {infinite[-1]:g} != _count {counts[series]:g}'


def _required_families(component: Component, families: tuple[Metric, ...]) -> Iterator[Issue]:
    present = {entry.name for _, entry in _registered(families)}
    for entry in load_registry().always_present(component):
        if entry.name not in present:
            yield "", f"the {component} exposition lacks family {entry.name} ({entry.type})"


_family_type_rule = correlation_rule(
    "metrics.family-type",
    contracts=_CONTRACTS,
    summary="each registry family present has the registry's type",
)(_per_exposition(_family_type))
_required_labels_rule = correlation_rule(
    "metrics.required-labels",
    contracts=_CONTRACTS,
    summary="every sample of a registry family carries the family's required labels",
)(_per_exposition(_required_labels))
_histogram_cumulative_rule = correlation_rule(
    "metrics.histogram-cumulative",
    contracts=_CONTRACTS,
    summary="histogram buckets are non-decreasing and the +Inf bucket equals _count",
)(_per_exposition(_histogram_cumulative))
_required_families_rule = correlation_rule(
    "metrics.required-families",
    contracts=_CONTRACTS,
    summary="the families the registry marks as always present for the component are there",
)(_per_exposition(_required_families))

RULES: tuple[Rule, ...] = (
    _exposition_parses,
    _family_type_rule,
    _required_labels_rule,
    _histogram_cumulative_rule,
    _required_families_rule,
)
