"""Rendered DynamoGraphDeployments have the structure of the ones ai-dynamo 1.6.1 ships.

The released wheel (downloaded from PyPI into the dynconform cache, never committed) holds
v1beta1 DGD templates (``dynamo/profiler/templates/dgd/``) and v1alpha1 DGDs (the planner's
test deployments). Every key path of a rendered DGD must exist there, with the same nesting,
names and value types, in a component of the same kind (frontend, worker, ...). What the
shipped files never use is listed in ``EXTENSIONS`` and must be a field of the Kubernetes core
types it sits in, read from the models of the ``kubernetes`` client wheel (also from PyPI).
The CRD's own OpenAPI schema is not published on PyPI, so it is not used here.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml

from dynconform.graph import RenderOptions, parse_graph, render_dgd
from dynconform.stability import cache_dir

DYNAMO = ("ai-dynamo", "1.6.1", "ai_dynamo-1.6.1-py3-none-any.whl")
KUBERNETES = ("kubernetes", "37.0.2", "kubernetes-37.0.2-py2.py3-none-any.whl")
SAMPLES = resources.files("dynconform.contracts") / "samples" / "ai-dynamo-1.6.1"
HERE = Path(__file__).parent

#: (component kind, path) the shipped DGDs never use, each a field of a Kubernetes core type
#: (checked below). Kind "" is the document; "any" a component of a kind they do not ship.
EXTENSIONS = {
    "v1beta1": {
        # variables from the graph's environment; secrets as secretKeyRef
        *(
            (kind, "spec.components[].podTemplate.spec.containers[].env")
            for kind in ("frontend", "worker", "prefill", "any")
        ),
        # cpu and memory of a replica (the templates request ephemeral-storage only, and no
        # resources at all for frontends)
        ("frontend", "spec.components[].podTemplate.spec.containers[].resources"),
        ("worker", "spec.components[].podTemplate.spec.containers[].resources.requests.cpu"),
        ("worker", "spec.components[].podTemplate.spec.containers[].resources.requests.memory"),
        ("prefill", "spec.components[].podTemplate.spec.containers[].resources.requests.memory"),
        ("any", "spec.components[].podTemplate.spec.containers[].resources.requests.cpu"),
        # the graph's node_selector
        ("worker", "spec.components[].podTemplate.spec.nodeSelector"),
        ("prefill", "spec.components[].podTemplate.spec.nodeSelector"),
    },
    "v1alpha1": {
        # environment of a frontend, secrets as secretKeyRef (the shipped files only set
        # literal values)
        ("frontend", "spec.services.*.envs"),
        ("worker", "spec.services.*.envs[].valueFrom"),
        ("prefill", "spec.services.*.envs[].valueFrom"),
        ("any", "spec.services.*.envs[].valueFrom"),
        # several secret_env Secrets (envFromSecret takes one)
        ("prefill", "spec.services.*.extraPodSpec.mainContainer.envFrom"),
        # the graph's node_selector
        ("worker", "spec.services.*.extraPodSpec.nodeSelector"),
        ("prefill", "spec.services.*.extraPodSpec.nodeSelector"),
    },
}
#: Where a DGD embeds a Kubernetes core type, per API version: path prefix -> type.
CORE_TYPES = {
    "v1beta1": {"spec.components[].podTemplate": "V1PodTemplateSpec"},
    "v1alpha1": {
        "spec.services.*.envs": "List[V1EnvVar]",
        "spec.services.*.extraPodSpec.mainContainer": "V1Container",
        "spec.services.*.extraPodSpec": "V1PodSpec",
    },
}


# -- wheels from PyPI, cached -----------------------------------------------------------------


def _wheel(name: str, version: str, filename: str) -> Path:
    target = cache_dir() / "wheels" / filename
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        proc = subprocess.run(
            [
                *(sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"),
                *("--disable-pip-version-check", "-q", "-d", tmp, f"{name}=={version}"),
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        downloaded = Path(tmp) / filename
        if proc.returncode != 0 or not downloaded.exists():
            pytest.skip(f"{name}=={version} cannot be downloaded from PyPI: {proc.stderr[-300:]}")
        downloaded.replace(target)
    return target


@pytest.fixture(scope="module")
def shipped() -> dict[str, list[dict[str, Any]]]:
    """The DGDs of the ai-dynamo 1.6.1 wheel, by API version."""
    out: dict[str, list[dict[str, Any]]] = {"v1beta1": [], "v1alpha1": []}
    with zipfile.ZipFile(_wheel(*DYNAMO)) as wheel:
        for member in wheel.namelist():
            if not member.endswith(".yaml"):
                continue
            for doc in yaml.safe_load_all(wheel.read(member)):
                if isinstance(doc, dict) and doc.get("kind") == "DynamoGraphDeployment":
                    out[doc["apiVersion"].removeprefix("nvidia.com/")].append(doc)
    return out


# -- shapes -----------------------------------------------------------------------------------


def _type(value: Any) -> str:
    for kind, name in ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string")):
        if isinstance(value, kind):
            return name
    if isinstance(value, dict):
        return "mapping"
    if isinstance(value, list):
        return "list"
    return "null"


def _merge(shape: dict[str, Any], value: Any) -> dict[str, Any]:
    shape.setdefault("types", set()).add(_type(value))
    if isinstance(value, dict):
        keys = shape.setdefault("keys", {})
        for key, item in value.items():
            _merge(keys.setdefault(key, {}), item)
    elif isinstance(value, list):
        for item in value:
            _merge(shape.setdefault("items", {}), item)
    return shape


def _unmatched(value: Any, shape: dict[str, Any], path: str) -> Iterator[tuple[str, Any]]:
    """Paths of ``value`` absent from ``shape`` (or of another type), with their values."""
    if _type(value) not in shape.get("types", set()):
        yield path, value
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if key not in shape.get("keys", {}):
                yield f"{path}.{key}", item
            else:
                yield from _unmatched(item, shape["keys"][key], f"{path}.{key}")
    elif isinstance(value, list):
        for item in value:
            yield from _unmatched(item, shape.get("items", {}), f"{path}[]")


def _kind(version: str, component: dict[str, Any]) -> str:
    if version == "v1beta1":
        return str(component.get("type", ""))
    kind = str(component.get("componentType", ""))
    kind = "frontend" if kind == "main" else kind
    return str(component.get("subComponentType", kind))


def _components(version: str, dgd: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    if version == "v1beta1":
        for component in dgd["spec"]["components"]:
            yield "spec.components[]", component
    else:
        for component in dgd["spec"]["services"].values():
            yield "spec.services.*", component


class Shapes:
    """The union structure of shipped DGDs: the documents, and the components per kind."""

    def __init__(self, version: str, dgds: list[dict[str, Any]]) -> None:
        self.version = version
        self.document: dict[str, Any] = {}
        self.kinds: dict[str, dict[str, Any]] = {}
        self.any_kind: dict[str, Any] = {}
        for dgd in dgds:
            _merge(self.document, _without_components(version, dgd))
            for _, component in _components(version, dgd):
                _merge(self.kinds.setdefault(_kind(version, component), {}), component)
                _merge(self.any_kind, component)

    def unmatched(self, dgd: dict[str, Any]) -> list[tuple[str, str, Any]]:
        """(kind, path, value) of each part of ``dgd`` the shipped DGDs lack."""
        document = _without_components(self.version, dgd)
        out = [("", path, value) for path, value in _unmatched(document, self.document, "")]
        for prefix, component in _components(self.version, dgd):
            kind = _kind(self.version, component)
            if kind not in self.kinds:  # compared with every shipped component
                kind, shape = "any", self.any_kind
            else:
                shape = self.kinds[kind]
            out += [(kind, path, value) for path, value in _unmatched(component, shape, prefix)]
        return [(kind, path.lstrip("."), value) for kind, path, value in out]


def _without_components(version: str, dgd: dict[str, Any]) -> dict[str, Any]:
    key = "components" if version == "v1beta1" else "services"
    return {**dgd, "spec": {k: v for k, v in dgd["spec"].items() if k != key}}


# -- Kubernetes core types from the client's models -------------------------------------------


@cache
def _k8s_wheel() -> zipfile.ZipFile:
    return zipfile.ZipFile(_wheel(*KUBERNETES))


@cache
def _model(name: str) -> dict[str, str]:
    """JSON field name -> type of a kubernetes client model (``V1EnvVar`` ...), read statically."""
    module = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()
    tree = ast.parse(_k8s_wheel().read(f"kubernetes/client/models/{module}.py"))
    found: dict[str, dict[str, str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.AnnAssign | ast.Assign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name) and target.id in ("openapi_types", "attribute_map"):
                    found[target.id] = ast.literal_eval(node.value)
    return {found["attribute_map"][attr]: kind for attr, kind in found["openapi_types"].items()}


def _k8s_problems(value: Any, kind: str, path: str) -> Iterator[str]:
    """Where ``value`` is not a valid instance of the kubernetes client type ``kind``."""
    listed = re.fullmatch(r"(?:List|list)\[(.+)\]", kind)
    mapped = re.fullmatch(r"(?:Dict\[str, |dict\(str, )(.+)[\])]", kind)
    primitive = {"str": "string", "int": "integer", "bool": "boolean"}
    if listed:
        if not isinstance(value, list):
            yield f"{path}: {kind} expected"
            return
        for item in value:
            yield from _k8s_problems(item, listed[1], f"{path}[]")
    elif mapped:
        if not isinstance(value, dict):
            yield f"{path}: {kind} expected"
            return
        for key, item in value.items():
            yield from _k8s_problems(item, mapped[1], f"{path}.{key}")
    elif kind in primitive:
        if _type(value) != primitive[kind]:
            yield f"{path}: {kind} expected, got {_type(value)}"
    elif kind == "object":
        return
    else:
        fields = _model(kind)
        if not isinstance(value, dict):
            yield f"{path}: {kind} expected"
            return
        for key, item in value.items():
            if key not in fields:
                yield f"{path}.{key}: not a field of {kind}"
            else:
                yield from _k8s_problems(item, fields[key], f"{path}.{key}")


def _core_problems(version: str, path: str, value: Any) -> list[str]:
    """Check a path the shipped DGDs lack against the core type that contains it."""
    for prefix, kind in sorted(CORE_TYPES[version].items(), key=lambda kv: -len(kv[0])):
        if path == prefix or path.startswith(prefix + ".") or path.startswith(prefix + "["):
            rest = path[len(prefix) :]
            for segment in re.findall(r"\[\]|\.[^.\[]+", rest):
                if segment == "[]":
                    match = re.fullmatch(r"(?:List|list)\[(.+)\]", kind)
                    if match is None:
                        return [f"{path}: {kind} is not a list"]
                    kind = match[1]
                elif mapped := re.fullmatch(r"(?:Dict\[str, |dict\(str, )(.+)[\])]", kind):
                    kind = mapped[1]  # any key of a map
                else:
                    fields = _model(kind) if re.fullmatch(r"V1\w+", kind) else {}
                    if segment[1:] not in fields:
                        return [f"{path}: {segment[1:]} is not a field of {kind}"]
                    kind = fields[segment[1:]]
            return list(_k8s_problems(value, kind, path))
    return [f"{path}: neither in the shipped DGDs nor in a Kubernetes core type"]


# -- the graphs -------------------------------------------------------------------------------


def _graphs() -> dict[str, str]:
    graphs = {
        name: (SAMPLES / f"graph-{name}.yaml").read_text(encoding="utf-8")
        for name in ("sdk-v2", "sdk-v2-ir", "ux-v2")
    }
    # Kubernetes Secret names take no underscore (render reports it; see test_graph_render)
    graphs["ux-v2"] = graphs["ux-v2"].replace("my_k8s_secret_name", "my-k8s-secret-name")
    graphs["shop"] = (HERE / "shop.yaml").read_text(encoding="utf-8")
    return graphs


def _rendered(version: str) -> dict[str, dict[str, Any]]:
    out = {}
    for name, text in _graphs().items():
        options = RenderOptions(api_version=version, image="nvcr.io/nvidia/ai-dynamo/vllm:1.6.1")
        rendering = render_dgd(parse_graph(text, name), options)
        assert rendering.manifest is not None, [p.format(name) for p in rendering.problems]
        out[name] = rendering.manifest
    return out


def test_the_wheel_ships_both_api_versions_with_their_layouts(
    shipped: dict[str, list[dict[str, Any]]],
) -> None:
    assert len(shipped["v1beta1"]) >= 7
    assert len(shipped["v1alpha1"]) >= 5
    # v1beta1 lists components (each with a name), v1alpha1 maps services by name
    assert all(isinstance(d["spec"]["components"], list) for d in shipped["v1beta1"])
    assert all("services" not in d["spec"] for d in shipped["v1beta1"])
    assert all(isinstance(d["spec"]["services"], dict) for d in shipped["v1alpha1"])
    assert all("components" not in d["spec"] for d in shipped["v1alpha1"])
    kinds = {_kind("v1beta1", c) for d in shipped["v1beta1"] for _, c in _components("v1beta1", d)}
    assert kinds == {"frontend", "worker", "prefill", "decode"}


@pytest.mark.parametrize("version", ["v1beta1", "v1alpha1"])
def test_rendered_dgds_match_the_structure_of_the_shipped_ones(
    shipped: dict[str, list[dict[str, Any]]], version: str
) -> None:
    shapes = Shapes(version, shipped[version])
    # the shipped files themselves match their own union (the comparison is sound)
    for dgd in shipped[version]:
        assert shapes.unmatched(dgd) == []
    unmatched: dict[tuple[str, str], list[Any]] = {}
    for dgd in _rendered(version).values():
        assert dgd["apiVersion"] == f"nvidia.com/{version}"
        for kind, path, value in shapes.unmatched(dgd):
            unmatched.setdefault((kind, path), []).append(value)
    assert set(unmatched) == EXTENSIONS[version], sorted(unmatched)
    problems = [
        problem
        for (_, path), values in unmatched.items()
        for value in values
        for problem in _core_problems(version, path, value)
    ]
    assert problems == []


def test_the_structure_check_catches_a_wrong_field(
    shipped: dict[str, list[dict[str, Any]]],
) -> None:
    shapes = Shapes("v1beta1", shipped["v1beta1"])
    dgd = _rendered("v1beta1")["shop"]
    component = dgd["spec"]["components"][0]
    component["replicas"] = "2"  # a string where the templates have an integer
    component["podTemplate"]["spec"]["containers"][0]["envFrom"] = [{"secretRef": "x"}]
    component["extraPodSpec"] = {}  # a v1alpha1 field in v1beta1
    found = {path for _, path, _ in shapes.unmatched(dgd)}
    assert {
        "spec.components[].replicas",
        "spec.components[].podTemplate.spec.containers[].envFrom[].secretRef",
        "spec.components[].extraPodSpec",
    } <= found


def test_the_core_type_check_catches_a_wrong_field() -> None:
    assert (
        _core_problems("v1beta1", "spec.components[].podTemplate.spec.nodeSelector", {"a": "b"})
        == []
    )
    assert _core_problems(
        "v1beta1",
        "spec.components[].podTemplate.spec.containers[].env",
        [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k", "value": "v"}}}],
    ) == [
        "spec.components[].podTemplate.spec.containers[].env[].valueFrom.secretKeyRef.value: "
        "not a field of V1SecretKeySelector"
    ]
    assert _core_problems("v1beta1", "spec.components[].podTemplate.spec.nodeSelectors", {}) == [
        "spec.components[].podTemplate.spec.nodeSelectors: nodeSelectors is not a field of "
        "V1PodSpec"
    ]
    assert _core_problems("v1alpha1", "spec.services.*.envs[].value", 3) == [
        "spec.services.*.envs[].value: str expected, got integer"
    ]
    assert _core_problems("v1alpha1", "spec.services.*.dynamoNamespace", "x") == [
        "spec.services.*.dynamoNamespace: neither in the shipped DGDs nor in a Kubernetes core type"
    ]
