"""Metrics contracts: the registry file and the frontend and worker text expositions."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from conftest import CAPTURES
from dynconform.contracts import Validator
from dynconform.contracts.metrics_registry import (
    MetricFamily,
    load_registry,
    parse_registry,
    registry_data,
)

VALIDATOR = Validator()
REGISTRY = load_registry()
EXCHANGES: dict[str, dict[str, Any]] = {
    e["name"]: e
    for e in json.loads((CAPTURES / "etcd_nats" / "http_exchanges.json").read_text("utf-8"))
}
FRONTEND = EXCHANGES["metrics_frontend"]["body_text"]
WORKER = EXCHANGES["worker_metrics"]["body_text"]
FE, WK = "metrics.frontend-exposition", "metrics.worker-exposition"


def _rules(contract: str, text: str) -> set[str]:
    return VALIDATOR.validate(contract, text).rules()


def _type_lines(text: str) -> dict[str, str]:
    pattern = r"^# TYPE (\S+) (\S+)$"
    return {m.group(1): m.group(2) for m in re.finditer(pattern, text, re.MULTILINE)}


# ---------------------------------------------------------------- registry


def test_registry_file_validates_against_its_contract() -> None:
    report = VALIDATOR.validate("metrics.registry", registry_data())
    assert report.ok, [str(v) for v in report.violations]


def test_registry_loads_typed_families() -> None:
    assert REGISTRY.dynamo_version == "1.6.1"
    assert len(REGISTRY) == len(registry_data()["families"])
    family = REGISTRY.get("dynamo_frontend_requests_total")
    assert isinstance(family, MetricFamily)
    assert (family.type, family.stability, family.components) == (
        "counter",
        "stable",
        ("frontend",),
    )
    assert family.required_labels == ("endpoint", "error_type", "model", "request_type", "status")
    assert family.parsed_name == "dynamo_frontend_requests"
    with pytest.raises(KeyError, match="no metric family"):
        REGISTRY.get("dynamo_frontend_nothing")


def test_registry_lookup_follows_the_parsers_counter_names() -> None:
    assert REGISTRY.find("dynamo_frontend_requests", "counter") is REGISTRY.get(
        "dynamo_frontend_requests_total"
    )
    # counters exposed without the _total suffix keep their name
    assert REGISTRY.find("dynamo_frontend_detokenize_token_count", "counter") is not None
    assert REGISTRY.find("dynamo_frontend_requests_total", "gauge") is REGISTRY.get(
        "dynamo_frontend_requests_total"
    )
    assert REGISTRY.find("dynamo_frontend_requests", "gauge") is None


@pytest.mark.parametrize(("text", "component"), [(FRONTEND, "frontend"), (WORKER, "worker")])
def test_registry_lists_every_captured_family_with_its_type(text: str, component: str) -> None:
    for name, kind in _type_lines(text).items():
        family = REGISTRY.get(name)
        assert family.type == kind, name
        assert component in family.components, name
        assert family.observed, name


def test_always_present_families_are_observed_and_exposed() -> None:
    for component in ("frontend", "worker"):
        always = REGISTRY.always_present(component)  # type: ignore[arg-type]
        assert always
        for family in always:
            assert family.observed
            assert component in family.components
    assert {f.name for f in REGISTRY.always_present("worker")} >= {
        "dynamo_component_requests_total",
        "dynamo_component_request_duration_seconds",
    }


def test_registry_tiers_and_origins() -> None:
    tiers = {f.name: f.stability for f in REGISTRY}
    assert tiers["dynamo_frontend_time_to_first_token_seconds"] == "stable"
    assert tiers["dynamo_tokio_alive_tasks"] == "experimental"
    assert {f.origin for f in REGISTRY if f.name.startswith("vllm:")} == {"engine"}
    assert not REGISTRY.get("dynamo_frontend_model_migration_total").observed


def test_registry_without_families_is_rejected() -> None:
    data = registry_data()
    del data["families"]
    assert _rules("metrics.registry", data) == {"schema.required"}
    data = registry_data()
    data["families"][0]["type"] = "meter"
    assert _rules("metrics.registry", data) == {"schema.enum"}
    assert parse_registry(registry_data()) == REGISTRY


# ---------------------------------------------------------------- real expositions


@pytest.mark.parametrize(("contract", "text"), [(FE, FRONTEND), (WK, WORKER)])
def test_captured_expositions_validate(contract: str, text: str) -> None:
    report = VALIDATOR.validate(contract, text)
    assert report.ok, [str(v) for v in report.violations]


def test_worker_exposition_is_not_a_frontend_exposition() -> None:
    report = VALIDATOR.validate(FE, WORKER)
    assert report.rules() == {"metrics.required-families"}
    assert any("dynamo_frontend_requests_total" in v.message for v in report.violations)


# ---------------------------------------------------------------- mutants


def _retype(text: str, name: str, kind: str) -> str:
    return re.sub(rf"^# TYPE {re.escape(name)} \S+$", f"# TYPE {name} {kind}", text, flags=re.M)


def _drop_family(text: str, name: str) -> str:
    keep = [
        line
        for line in text.splitlines()
        if not re.match(rf"(# (HELP|TYPE) )?{re.escape(name)}(_bucket|_sum|_count)?[ {{]", line)
    ]
    return "\n".join(keep) + "\n"


def _set_sample(text: str, prefix: str, value: str) -> str:
    lines = text.splitlines()
    [index] = [i for i, line in enumerate(lines) if line.startswith(prefix)]
    lines[index] = lines[index].rsplit(" ", 1)[0] + " " + value
    return "\n".join(lines) + "\n"


BUCKET = (
    'dynamo_component_request_duration_seconds_bucket{dynamo_component="backend",'
    'dynamo_endpoint="generate",dynamo_namespace="dynamo",worker_id="694da2037aceaa07",'
)

MUTANTS = {
    "gauge-as-counter": (
        FE,
        _retype(FRONTEND, "dynamo_frontend_inflight_requests", "counter"),
        "metrics.family-type",
    ),
    "counter-as-gauge": (
        WK,
        _retype(WORKER, "dynamo_component_requests_total", "gauge"),
        "metrics.family-type",
    ),
    "histogram-as-summary": (
        WK,
        _retype(WORKER, "dynamo_component_request_duration_seconds", "summary"),
        "metrics.family-type",
    ),
    "missing-label": (
        WK,
        WORKER.replace(
            'dynamo_component_inflight_requests{dynamo_component="backend",',
            "dynamo_component_inflight_requests{",
            1,
        ),
        "metrics.required-labels",
    ),
    "non-cumulative-buckets": (
        WK,
        _set_sample(WORKER, BUCKET + 'le="0.01"}', "1"),
        "metrics.histogram-cumulative",
    ),
    "inf-bucket-not-count": (
        WK,
        _set_sample(WORKER, BUCKET + 'le="+Inf"}', "1000000"),
        "metrics.histogram-cumulative",
    ),
    "no-inf-bucket": (
        WK,
        "\n".join(line for line in WORKER.splitlines() if not line.startswith(BUCKET + 'le="+Inf"'))
        + "\n",
        "metrics.histogram-cumulative",
    ),
    "missing-family": (
        FE,
        _drop_family(FRONTEND, "dynamo_frontend_time_to_first_token_seconds"),
        "metrics.required-families",
    ),
    "missing-worker-family": (
        WK,
        _drop_family(WORKER, "dynamo_component_requests_total"),
        "metrics.required-families",
    ),
    "unparsable": (WK, WORKER + 'dynamo_x{a="b" 1\n', "metrics.exposition-parses"),
}


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_mutant_exposition_is_rejected_by_its_rule(name: str) -> None:
    contract, text, rule = MUTANTS[name]
    report = VALIDATOR.validate(contract, text)
    assert report.rules() == {rule}, [str(v) for v in report.violations]


def test_violation_names_the_family() -> None:
    _, text, _ = MUTANTS["non-cumulative-buckets"]
    [violation] = VALIDATOR.validate(WK, text).violations
    assert violation.pointer == ""
    assert "dynamo_component_request_duration_seconds" in violation.message
    assert "le=0.01" in violation.message


def test_unparsable_exposition_reports_only_the_parse_error() -> None:
    report = VALIDATOR.validate(FE, 'dynamo_frontend_requests_total{model="tiny"} many\n')
    assert report.rules() == {"metrics.exposition-parses"}


def test_unknown_families_are_allowed() -> None:
    text = WORKER + "# HELP my_engine_thing x\n# TYPE my_engine_thing gauge\nmy_engine_thing 1\n"
    assert VALIDATOR.validate(WK, text).ok


# ---------------------------------------------------------------- generated expositions

label_values = st.text("abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=10)
BOUNDS = ["0.005", "0.01", "0.1", "1", "10", "+Inf"]


def _labels(names: dict[str, str], extra: str = "") -> str:
    parts = [f'{k}="{v}"' for k, v in sorted(names.items())]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


@st.composite
def family_lines(draw: st.DrawFn, family: MetricFamily) -> list[str]:
    lines = [f"# HELP {family.name} {family.description}", f"# TYPE {family.name} {family.type}"]
    series = draw(st.integers(1, 2)) if family.required_labels else 1
    for number in range(series):
        labels = {name: f"{draw(label_values)}-{number}" for name in family.required_labels}
        if family.type == "histogram":
            counts = draw(st.lists(st.integers(0, 50), min_size=len(BOUNDS), max_size=len(BOUNDS)))
            total = 0
            for bound, count in zip(BOUNDS, counts, strict=True):
                total += count
                le = 'le="' + bound + '"'
                lines.append(f"{family.name}_bucket{_labels(labels, le)} {total}")
            lines.append(f"{family.name}_sum{_labels(labels)} {draw(st.integers(0, 10**6))}")
            lines.append(f"{family.name}_count{_labels(labels)} {total}")
        else:
            lines.append(f"{family.name}{_labels(labels)} {draw(st.integers(0, 10**9))}")
    return lines


@st.composite
def expositions(draw: st.DrawFn, component: str) -> str:
    always = REGISTRY.always_present(component)  # type: ignore[arg-type]
    others = [f for f in REGISTRY.for_component(component) if f not in always]  # type: ignore[arg-type]
    chosen = always + draw(st.lists(st.sampled_from(others), max_size=5, unique=True))
    lines: list[str] = []
    for family in chosen:
        lines += draw(family_lines(family))
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(("contract", "component"), [(FE, "frontend"), (WK, "worker")])
def test_generated_expositions_validate(contract: str, component: str) -> None:
    @given(expositions(component))
    def check(text: str) -> None:
        assert list(text_string_to_metric_families(text))
        report = VALIDATOR.validate(contract, text)
        assert report.ok, [str(v) for v in report.violations]

    check()
