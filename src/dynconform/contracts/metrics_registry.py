"""The registry of Prometheus metric families that a Dynamo release exposes.

The registry ships as package data (``metrics_registry.json``, contract ``metrics.registry``)
and lists, for each family, its type, labels, the components that expose it and its stability
tier::

    from dynconform.contracts.metrics_registry import load_registry

    registry = load_registry()
    family = registry.get("dynamo_frontend_requests_total")
    print(family.type, family.required_labels, family.stability)
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any, Literal, cast

__all__ = [
    "COMPONENTS",
    "Component",
    "MetricFamily",
    "MetricType",
    "MetricsRegistry",
    "Stability",
    "load_registry",
    "parse_registry",
    "registry_data",
]

MetricType = Literal["counter", "gauge", "histogram", "summary", "info", "stateset", "untyped"]
Component = Literal["frontend", "worker"]
Stability = Literal["stable", "beta", "experimental"]
COMPONENTS: tuple[Component, ...] = ("frontend", "worker")


@dataclass(frozen=True, slots=True)
class MetricFamily:
    """One metric family: its exposed name, type, labels, exposing components and tier."""

    name: str
    type: MetricType
    components: tuple[Component, ...]
    required_labels: tuple[str, ...]
    optional_labels: tuple[str, ...]
    stability: Stability
    #: components whose exposition must hold the family once they have served a request
    always: tuple[Component, ...]
    origin: Literal["dynamo", "engine"]
    #: whether the family appears in the captured expositions of the release
    observed: bool
    description: str

    @property
    def parsed_name(self) -> str:
        """The family name prometheus-client's parser reports (counters lose ``_total``)."""
        if self.type == "counter" and self.name.endswith("_total"):
            return self.name[: -len("_total")]
        return self.name


@dataclass(frozen=True, slots=True)
class MetricsRegistry:
    """All metric families of one Dynamo release."""

    dynamo_version: str
    families: tuple[MetricFamily, ...]
    _by_name: Mapping[str, MetricFamily] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {f.name: f for f in self.families})

    def __iter__(self) -> Iterator[MetricFamily]:
        return iter(self.families)

    def __len__(self) -> int:
        return len(self.families)

    def get(self, name: str) -> MetricFamily:
        """The family exposed as ``name`` (as on its ``# TYPE`` line)."""
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(
                f"no metric family {name!r} in the {self.dynamo_version} registry"
            ) from None

    def find(self, parsed_name: str, parsed_type: str) -> MetricFamily | None:
        """The family behind a family parsed by prometheus-client, if the registry has it.

        The parser drops ``_total`` from counter names, so a parsed counter ``x`` is the
        registry's ``x_total`` when that exists, else ``x``.
        """
        by_name = self._by_name
        if parsed_type == "counter" and parsed_name + "_total" in by_name:
            return by_name[parsed_name + "_total"]
        return by_name.get(parsed_name)

    def for_component(self, component: Component) -> list[MetricFamily]:
        """The families ``component`` may expose."""
        return [f for f in self.families if component in f.components]

    def always_present(self, component: Component) -> list[MetricFamily]:
        """The families every exposition of ``component`` must hold."""
        return [f for f in self.families if component in f.always]


def parse_registry(data: Mapping[str, Any]) -> MetricsRegistry:
    """Build a registry from its JSON form (validate it against ``metrics.registry`` first)."""
    families = tuple(
        MetricFamily(
            name=str(raw["name"]),
            type=cast(MetricType, raw["type"]),
            components=tuple(cast(Component, c) for c in raw["components"]),
            required_labels=tuple(str(label) for label in raw["required_labels"]),
            optional_labels=tuple(str(label) for label in raw["optional_labels"]),
            stability=cast(Stability, raw["stability"]),
            always=tuple(cast(Component, c) for c in raw["always"]),
            origin=cast(Literal["dynamo", "engine"], raw["origin"]),
            observed=bool(raw["observed"]),
            description=str(raw["description"]),
        )
        for raw in data["families"]
    )
    return MetricsRegistry(dynamo_version=str(data["dynamo_version"]), families=families)


def registry_data() -> dict[str, Any]:
    """The bundled registry file as JSON data."""
    text = (resources.files("dynconform.contracts") / "metrics_registry.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


@cache
def load_registry() -> MetricsRegistry:
    """The bundled registry (ai-dynamo 1.6.1)."""
    return parse_registry(registry_data())
