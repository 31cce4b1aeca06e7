"""Deployment contracts: graph deployment configs and Kubernetes quantities."""

from __future__ import annotations

import copy
from fractions import Fraction
from importlib import resources
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from conftest import FIXTURES
from dynconform.contracts import InputError, Validator, read_instances
from dynconform.contracts.k8s_quantity import QuantityError, parse_quantity

VALIDATOR = Validator()
GRAPH = "deployment.graph"
ORIGINALS = FIXTURES / "graphs"
SAMPLES = resources.files("dynconform.contracts") / "samples" / "ai-dynamo-1.6.1"
SAMPLE_FILES = ["graph-sdk-v2.yaml", "graph-sdk-v2-ir.yaml", "graph-ux-v2.yaml"]


def _sample(name: str = "graph-sdk-v2.yaml") -> dict[str, Any]:
    graph: dict[str, Any] = yaml.safe_load((SAMPLES / name).read_text(encoding="utf-8"))
    return graph


def _violations(graph: Any) -> list[tuple[str, str]]:
    return [(v.rule, v.pointer) for v in VALIDATOR.validate(GRAPH, graph).violations]


def _component(graph: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in graph["components"] if c["name"] == name)


# -- corrected samples and the drafts they come from ------------------------------------------


@pytest.mark.parametrize("name", SAMPLE_FILES)
def test_corrected_sample_graphs_validate(name: str) -> None:
    with resources.as_file(SAMPLES / name) as path:
        items, stream, fmt = read_instances(str(path))
    assert (len(items), stream, fmt) == (1, False, "yaml")
    report = VALIDATOR.validate(GRAPH, items[0])
    assert report.ok, [str(v) for v in report.violations]


def test_duplicate_cmd_key_in_the_sdk_v2_draft_is_reported_with_its_line() -> None:
    with pytest.raises(InputError, match=r"sdk-v2-graph\.yaml:32:5: duplicate key 'cmd'"):
        read_instances(str(ORIGINALS / "sdk-v2-graph.yaml"))


def test_sdk_v2_draft_typos_are_schema_violations() -> None:
    # Read as plain PyYAML would (the last `cmd` wins) to see what else is wrong.
    graph = yaml.safe_load((ORIGINALS / "sdk-v2-graph.yaml").read_text(encoding="utf-8"))
    report = VALIDATOR.validate(GRAPH, graph)
    by_pointer = {v.pointer: v for v in report.violations}
    assert by_pointer["/components/1"].rule == "schema.additionalProperties"
    assert "'arg', 'instances' were unexpected" in by_pointer["/components/1"].message
    assert by_pointer["/components/4/run_config"].rule == "schema.additionalProperties"
    assert "'model_name', 'port'" in by_pointer["/components/4/run_config"].message
    assert set(report.rules()) == {"schema.additionalProperties"}


def _move_flags_to_options(graph: dict[str, Any]) -> None:
    for component in graph["components"]:
        run_config = component.get("run_config")
        if run_config is None:
            continue
        options = run_config.pop("parameters", {})
        for key in [k for k in run_config if k not in ("input", "output", "args", "options")]:
            options[key] = run_config.pop(key)
        if options:
            run_config["options"] = options


def test_sdk_v2_draft_gpu_mismatch_remains_once_the_typos_are_fixed() -> None:
    graph = yaml.safe_load((ORIGINALS / "sdk-v2-graph.yaml").read_text(encoding="utf-8"))
    backend = graph["components"][1]
    backend["args"] = backend.pop("arg")
    backend["replicas"] = backend.pop("instances")
    _move_flags_to_options(graph)
    assert _violations(graph) == [
        ("deployment.gpu-visible-devices", "/components/0/environment/CUDA_VISIBLE_DEVICES")
    ]


def test_sdk_v2_ir_draft_nested_parameters_and_undeclared_secret() -> None:
    items, _, _ = read_instances(str(ORIGINALS / "sdk-v2-ir-graph.yaml"))
    graph = items[0]
    violations = VALIDATOR.validate(GRAPH, graph).violations
    assert ("schema.additionalProperties", "/components/1/run_config") in [
        (v.rule, v.pointer) for v in violations
    ]
    assert "'parameters' was unexpected" in violations[0].message
    _move_flags_to_options(graph)
    assert _violations(graph) == [
        ("deployment.secrets-declared", "/components/1/environment/HF_TOKEN")
    ]


def test_ux_v2_alternative_1_is_valid_as_written() -> None:
    items, _, _ = read_instances(str(ORIGINALS / "ux-v2-deployment.yaml"))
    assert VALIDATOR.validate(GRAPH, items[0]).ok


def test_ux_v2_alternative_2_is_not_yaml() -> None:
    with pytest.raises(InputError, match=r"ux-v2-config\.yaml:15:17: mapping values"):
        read_instances(str(ORIGINALS / "ux-v2-config.yaml"))


# -- generated graphs ------------------------------------------------------------------------

_names = st.from_regex(r"[a-z][a-z0-9_-]{0,10}", fullmatch=True)
_cpu = st.sampled_from(["100m", "500m", "2", "1.5", "250m"]) | st.integers(0, 64)
_memory = st.sampled_from(["512Mi", "2Gi", "24Gi", "1G", "1e9", "128974848"]) | st.integers(0)


@st.composite
def _graphs(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(_names, min_size=1, max_size=6, unique=True))
    namespace = draw(st.none() | _names)
    target_ns = namespace or "dynamo"
    components = []
    for name in names:
        component: dict[str, Any] = {"name": name}
        if draw(st.booleans()):
            component["cmd"] = ["dynamo", "serve"]
            component["run_config"] = {
                "input": draw(st.sampled_from(["http", "text", "dyn://dynamo.backend.generate"])),
                "output": draw(st.sampled_from(["dyn", "vllm", "sglang", "trtllm"])),
                "options": {"tensor_parallel_size": draw(st.integers(1, 8))},
            }
        else:
            component["py_class"] = "pkg.module:Component"
        deps = draw(st.lists(st.sampled_from(names), max_size=3, unique=True))
        if deps:
            component["dependency"] = {
                f"dep{i}": f"dynamo://v1/{target_ns}/{d}" for i, d in enumerate(deps)
            }
        resources_: dict[str, Any] = {}
        if draw(st.booleans()):
            resources_["cpu"] = draw(_cpu)
        if draw(st.booleans()):
            resources_["memory"] = draw(_memory)
        environment: dict[str, Any] = {"LOG_LEVEL": draw(st.sampled_from(["info", 1, True]))}
        if draw(st.booleans()):
            gpus = draw(st.integers(0, 8))
            resources_["gpu"] = gpus
            if draw(st.booleans()):
                environment["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in range(gpus))
        if resources_:
            component["resources"] = resources_
        secrets = draw(
            st.lists(st.from_regex(r"[A-Z][A-Z0-9_]{0,8}", fullmatch=True), max_size=3, unique=True)
        )
        if secrets:
            component["secrets"] = secrets
            for secret in secrets:
                environment[secret] = f"${{{{ secrets.{secret} }}}}"
        component["environment"] = environment
        component["replicas"] = draw(st.integers(0, 10))
        components.append(component)
    graph: dict[str, Any] = {"version": draw(st.sampled_from([1.0, 0.1, "1.0"])), "name": "graph"}
    if namespace is not None:
        graph["namespace"] = namespace
    graph["components"] = components
    return graph


@given(_graphs())
def test_generated_graphs_validate(graph: dict[str, Any]) -> None:
    report = VALIDATOR.validate(GRAPH, graph)
    assert report.ok, [str(v) for v in report.violations]


@given(_graphs(), st.data())
def test_generated_graphs_with_a_duplicate_name_are_rejected(
    graph: dict[str, Any], data: st.DataObject
) -> None:
    source = data.draw(st.integers(0, len(graph["components"]) - 1))
    clone = copy.deepcopy(graph["components"][source])
    clone.pop("dependency", None)
    graph["components"].append(clone)
    last = len(graph["components"]) - 1
    assert ("deployment.unique-names", f"/components/{last}/name") in _violations(graph)


# -- mutants of a corrected graph -------------------------------------------------------------


def test_duplicate_component_name() -> None:
    graph = _sample()
    graph["components"][4]["name"] = "backend_1"
    report = VALIDATOR.validate(GRAPH, graph)
    assert [(v.rule, v.pointer) for v in report.violations] == [
        ("deployment.unique-names", "/components/4/name")
    ]
    assert "/components/1" in report.violations[0].message


def test_dangling_dependency() -> None:
    graph = _sample()
    _component(graph, "frontend")["dependency"]["backend1"] = "dynamo://v1/ns1/backend_9"
    report = VALIDATOR.validate(GRAPH, graph)
    assert [(v.rule, v.pointer) for v in report.violations] == [
        ("deployment.dependency-resolves", "/components/0/dependency/backend1")
    ]
    assert "did you mean" in report.violations[0].message


def test_dependency_in_another_namespace() -> None:
    graph = _sample()
    _component(graph, "frontend")["dependency"]["backend1"] = "dynamo://v1/ns2/backend_1"
    assert _violations(graph) == [
        ("deployment.dependency-resolves", "/components/0/dependency/backend1")
    ]


def test_dependency_without_namespace_uses_dynamo_default() -> None:
    graph = _sample()
    del graph["namespace"]
    # every dependency of the sample names ns1, which is no longer the graph's namespace
    rules = {rule for rule, _ in _violations(graph)}
    assert rules == {"deployment.dependency-resolves"}
    for component in graph["components"]:
        for alias, uri in component.get("dependency", {}).items():
            component["dependency"][alias] = uri.replace("/ns1/", "/dynamo/")
    assert _violations(graph) == []


def test_malformed_dependency_uri_is_a_schema_violation() -> None:
    graph = _sample()
    _component(graph, "frontend")["dependency"]["backend1"] = "dyn://ns1.backend_1"
    assert _violations(graph) == [("schema.pattern", "/components/0/dependency/backend1")]


def test_undeclared_secret() -> None:
    graph = _sample()
    frontend = _component(graph, "frontend")
    frontend["environment"]["API_KEY"] = "Bearer ${{ secrets.API_KEY }}"
    frontend["parameters"]["token"] = "${{secrets.OTHER}}"
    report = VALIDATOR.validate(GRAPH, graph)
    assert [(v.rule, v.pointer) for v in report.violations] == [
        ("deployment.secrets-declared", "/components/0/parameters/token"),
        ("deployment.secrets-declared", "/components/0/environment/API_KEY"),
    ]
    assert "declared: DB_URI" in report.violations[0].message


@pytest.mark.parametrize(
    ("kind", "value", "needle"),
    [
        ("cpu", "2 cores", "not a Kubernetes quantity"),
        ("cpu", "0.5m", "finer than 1m"),
        ("cpu", "-1", "negative"),
        ("memory", "512m", "did you mean Mi"),
        ("memory", "2GB", "not a Kubernetes quantity"),
        ("memory", "2gi", "not a Kubernetes quantity"),
        ("gpu", "1.5", "whole number of GPUs"),
        ("gpu", "one", "not a Kubernetes quantity"),
    ],
)
def test_bad_quantity(kind: str, value: str, needle: str) -> None:
    graph = _sample()
    component = _component(graph, "llamacpp_worker")
    component["resources"][kind] = value
    report = VALIDATOR.validate(GRAPH, graph)
    assert [(v.rule, v.pointer) for v in report.violations] == [
        ("deployment.quantity-parses", f"/components/7/resources/{kind}")
    ]
    assert needle in report.violations[0].message


def test_quantity_of_wrong_type_is_a_schema_violation() -> None:
    graph = _sample()
    _component(graph, "llamacpp_worker")["resources"]["cpu"] = True
    assert _violations(graph) == [("schema.type", "/components/7/resources/cpu")]


@pytest.mark.parametrize("devices", ["0", "0,1,2", "0,0", ""])
def test_gpu_count_mismatch(devices: str) -> None:
    graph = _sample()
    _component(graph, "vllm_worker")["environment"]["CUDA_VISIBLE_DEVICES"] = devices
    assert _violations(graph) == [
        ("deployment.gpu-visible-devices", "/components/5/environment/CUDA_VISIBLE_DEVICES")
    ]


def test_gpu_count_accepts_uuids_and_string_quantities() -> None:
    graph = _sample()
    worker = _component(graph, "vllm_worker")
    worker["environment"]["CUDA_VISIBLE_DEVICES"] = "GPU-8c1f, GPU-77aa"
    worker["resources"]["gpu"] = "2"
    assert _violations(graph) == []


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda g: g.pop("components"), ("schema.required", "")),
        (lambda g: g["components"][0].pop("name"), ("schema.required", "/components/0")),
        (lambda g: g.update(name="My_Graph"), ("schema.pattern", "/name")),
        (
            lambda g: g["components"][0].update(name="Frontend"),
            ("schema.pattern", "/components/0/name"),
        ),
        (
            lambda g: g["components"][0].update(replicas=-1),
            ("schema.minimum", "/components/0/replicas"),
        ),
        (
            lambda g: g["components"][0].update(instances=2),
            ("schema.additionalProperties", "/components/0"),
        ),
        (lambda g: g["components"][0].update(cmd=[]), ("schema.minItems", "/components/0/cmd")),
        (
            lambda g: g["components"][0].update(py_class="a.b.c"),
            ("schema.pattern", "/components/0/py_class"),
        ),
        (
            lambda g: g["components"][0]["resources"].update(gpus=1),
            ("schema.additionalProperties", "/components/0/resources"),
        ),
        (
            lambda g: g["components"][0]["environment"].update({"1BAD": "x"}),
            ("schema.pattern", "/components/0/environment"),
        ),
        (
            lambda g: g["components"][0].update(secrets=["A", "A"]),
            ("schema.uniqueItems", "/components/0/secrets"),
        ),
        (lambda g: g.update(version="v1"), ("schema.pattern", "/version")),
        (lambda g: g.update(deployments=[]), ("schema.additionalProperties", "")),
    ],
)
def test_schema_mutants(mutate: Any, expected: tuple[str, str]) -> None:
    graph = _sample()
    mutate(graph)
    assert expected in _violations(graph)


# -- Kubernetes quantities -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("500m", Fraction(1, 2)),
        ("2", Fraction(2)),
        ("1.5", Fraction(3, 2)),
        ("+.5", Fraction(1, 2)),
        ("1.", Fraction(1)),
        ("2Gi", Fraction(2 * 2**30)),
        ("128974848", Fraction(128974848)),
        ("129e6", Fraction(129_000_000)),
        ("129M", Fraction(129_000_000)),
        ("123Mi", Fraction(123 * 2**20)),
        ("1E", Fraction(10**18)),
        ("1E3", Fraction(1000)),
        ("1e-3", Fraction(1, 1000)),
        ("-1k", Fraction(-1000)),
        (10, Fraction(10)),
        (0.25, Fraction(1, 4)),
    ],
)
def test_quantities_parse_exactly(text: str | int | float, value: Fraction) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize(
    "text",
    [
        "",
        " 1",
        "1 ",
        "2GB",
        "2gi",
        "1e",
        "1.2.3",
        "Mi",
        "0x10",
        "1Ki2",
        "--1",
        "1_000",
        True,
        None,
        float("nan"),
        [1],
    ],
)
def test_non_quantities_are_rejected(text: Any) -> None:
    with pytest.raises(QuantityError):
        parse_quantity(text)


@given(
    st.integers(0, 10**6),
    st.sampled_from(["", "m", "k", "M", "G", "Ki", "Mi", "Gi", "Ti"]),
)
def test_generated_quantities_parse(number: int, suffix: str) -> None:
    factor = {
        "": 1,
        "m": Fraction(1, 1000),
        "k": 10**3,
        "M": 10**6,
        "G": 10**9,
        "Ki": 2**10,
        "Mi": 2**20,
        "Gi": 2**30,
        "Ti": 2**40,
    }[suffix]
    assert parse_quantity(f"{number}{suffix}") == number * factor
