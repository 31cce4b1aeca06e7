"""The catalogue of change kinds: stable, kebab-case IDs used in reports and waivers."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ChangeKind:
    """One kind of API change."""

    id: str
    breaking: bool
    summary: str
    griffe: str | None = None
    domain: str = "api"  # api (Python API diff), surface (CLI/env/metrics/CRDs), contract


KINDS: dict[str, ChangeKind] = {
    k.id: k
    for k in (
        ChangeKind("object-removed", True, "a public object was removed", "object-removed"),
        ChangeKind(
            "reexport-removed",
            True,
            "a re-exported name (import X as X, or listed in __all__) was removed",
            "object-removed",
        ),
        ChangeKind(
            "object-kind-changed",
            True,
            "an object changed kind (e.g. function to attribute)",
            "object-changed-kind",
        ),
        ChangeKind("parameter-removed", True, "a parameter was removed", "parameter-removed"),
        ChangeKind(
            "parameter-moved", True, "a positional parameter changed position", "parameter-moved"
        ),
        ChangeKind(
            "parameter-kind-changed",
            True,
            "a parameter changed kind incompatibly (e.g. positional to keyword-only)",
            "parameter-changed-kind",
        ),
        ChangeKind(
            "parameter-default-changed",
            True,
            "an optional parameter's default value changed",
            "parameter-changed-default",
        ),
        ChangeKind(
            "parameter-now-required",
            True,
            "an optional parameter became required",
            "parameter-changed-required",
        ),
        ChangeKind(
            "parameter-added-required",
            True,
            "a required parameter was added",
            "parameter-added-required",
        ),
        ChangeKind(
            "parameter-annotation-changed",
            True,
            "a parameter's type annotation changed and does not accept all it did",
        ),
        ChangeKind(
            "return-annotation-changed",
            True,
            "a return annotation changed and may return what it did not",
            "return-changed-type",
        ),
        ChangeKind("attribute-annotation-changed", True, "an attribute's type annotation changed"),
        ChangeKind(
            "attribute-value-changed",
            True,
            "a constant's value changed (UPPER_CASE names and enum members)",
            "attribute-changed-value",
        ),
        ChangeKind("overload-removed", True, "an @overload variant was removed"),
        ChangeKind("async-changed", True, "a function changed between async def and def"),
        ChangeKind(
            "export-removed", True, "a name was dropped from __all__ but the object remains"
        ),
        ChangeKind("base-removed", True, "a class lost a base class", "class-removed-base"),
        ChangeKind(
            "decorator-kind-changed",
            True,
            "a method changed between instance, class and static method, or lost its setter",
        ),
        ChangeKind("tier-demoted", True, "an object moved to a weaker stability tier"),
        ChangeKind("object-added", False, "a public object was added"),
        ChangeKind("parameter-added-optional", False, "an optional parameter was added"),
        ChangeKind(
            "parameter-annotation-widened",
            False,
            "a parameter's annotation now accepts more (its union members are a superset)",
        ),
        ChangeKind(
            "return-annotation-narrowed",
            False,
            "a return annotation now promises less (its union members are a subset)",
        ),
        ChangeKind("overload-added", False, "an @overload variant was added"),
        ChangeKind("export-added", False, "a name was added to __all__"),
        ChangeKind("base-added", False, "a class gained a base class"),
        ChangeKind("deprecated", False, "an object or parameter was newly marked deprecated"),
        ChangeKind("tier-promoted", False, "an object moved to a stronger stability tier"),
        ChangeKind(
            "surface-removed",
            True,
            "a CLI flag, env variable, metric, CRD version or CRD field was removed",
            domain="surface",
        ),
        ChangeKind(
            "surface-renamed",
            True,
            "a CLI flag, env variable or metric was renamed (same definition, new name)",
            domain="surface",
        ),
        ChangeKind(
            "flag-changed",
            True,
            "a CLI flag changed incompatibly (alias, type, choices, default, env fallback)",
            domain="surface",
        ),
        ChangeKind(
            "metric-type-changed",
            True,
            "a metric changed type (e.g. counter to gauge)",
            domain="surface",
        ),
        ChangeKind(
            "metric-label-removed",
            True,
            "a metric lost a label (queries grouping or filtering by it break)",
            domain="surface",
        ),
        ChangeKind("crd-type-changed", True, "a CRD field changed type", domain="surface"),
        ChangeKind(
            "crd-required-added",
            True,
            "a CRD field became required, or a required field was added to an existing object",
            domain="surface",
        ),
        ChangeKind(
            "crd-enum-removed",
            True,
            "a CRD field lost enum values (or its values were newly restricted)",
            domain="surface",
        ),
        ChangeKind("contract-removed", True, "a wire contract was removed", domain="contract"),
        ChangeKind(
            "contract-incompatible",
            True,
            "a wire contract changed incompatibly under the compatibility mode",
            domain="contract",
        ),
        ChangeKind(
            "surface-added",
            False,
            "a CLI flag, env variable, metric, CRD version or CRD field was added",
            domain="surface",
        ),
        ChangeKind(
            "flag-widened",
            False,
            "a CLI flag now accepts more (new alias, choice or env var)",
            domain="surface",
        ),
        ChangeKind("metric-label-added", False, "a metric gained a label", domain="surface"),
        ChangeKind(
            "crd-enum-added",
            False,
            "a CRD field accepts more enum values (or is no longer restricted)",
            domain="surface",
        ),
        ChangeKind(
            "crd-storage-changed",
            False,
            "a CRD's storage version changed (stored objects migrate)",
            domain="surface",
        ),
        ChangeKind("contract-added", False, "a wire contract was added", domain="contract"),
        ChangeKind(
            "stable-references-experimental",
            False,
            "a Stable signature or attribute references an Experimental type",
        ),
    )
}

BREAKING = frozenset(k for k, v in KINDS.items() if v.breaking and v.domain == "api")
"""The breaking kinds the Python API diff reports."""
