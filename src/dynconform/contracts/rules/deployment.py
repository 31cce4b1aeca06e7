"""Semantic rules of the deployment contracts (graph deployment configs)."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from typing import Any

from dynconform.contracts._rules import Issue, Rule, record_rule
from dynconform.contracts._validate import json_pointer
from dynconform.contracts.k8s_quantity import QuantityError, parse_quantity

GRAPH = "deployment.graph"
#: The namespace of a graph that names none: Dynamo's own default.
DEFAULT_NAMESPACE = "dynamo"

_DEPENDENCY = re.compile(r"dynamo://v1/(?P<namespace>[^/]+)/(?P<component>[^/]+)")
#: A secret reference inside a string: ``${{ secrets.NAME }}`` (group 1 is NAME).
SECRET_REF = re.compile(r"\$\{\{\s*secrets\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def _components(graph: Any) -> Iterator[tuple[int, dict[str, Any]]]:
    yield from enumerate(graph["components"])


@record_rule(
    "deployment.unique-names",
    contract=GRAPH,
    summary="Component names are unique within the graph.",
)
def unique_names(graph: Any) -> Iterator[Issue]:
    first: dict[str, int] = {}
    for index, component in _components(graph):
        name = component["name"]
        if name in first:
            yield (
                json_pointer(["components", index, "name"]),
                f"component name {name!r} is already used by /components/{first[name]}",
            )
        else:
            first[name] = index


@record_rule(
    "deployment.dependency-resolves",
    contract=GRAPH,
    summary="Every dynamo:// dependency names a component of the graph, in the graph's namespace.",
)
def dependency_resolves(graph: Any) -> Iterator[Issue]:
    namespace = graph.get("namespace", DEFAULT_NAMESPACE)
    names = [component["name"] for _, component in _components(graph)]
    for index, component in _components(graph):
        for alias, uri in (component.get("dependency") or {}).items():
            pointer = json_pointer(["components", index, "dependency", alias])
            match = _DEPENDENCY.fullmatch(uri)
            if match is None:  # the schema's pattern reports the shape
                continue
            if match["namespace"] != namespace:
                yield (
                    pointer,
                    f"{uri} is in namespace {match['namespace']!r} but the graph deploys into "
                    f"{namespace!r}",
                )
            target = match["component"]
            if target not in names:
                close = difflib.get_close_matches(target, names, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                yield pointer, f"{uri} names no component of this graph{hint}"


def _strings(value: Any, path: list[object]) -> Iterator[tuple[list[object], str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, [*path, key])
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _strings(item, [*path, i])


@record_rule(
    "deployment.secrets-declared",
    contract=GRAPH,
    summary="Every ${{ secrets.NAME }} a component uses is declared in its secrets list.",
)
def secrets_declared(graph: Any) -> Iterator[Issue]:
    for index, component in _components(graph):
        declared = set(component.get("secrets") or ())
        for key, value in component.items():
            if key in ("name", "secrets"):
                continue
            for path, text in _strings(value, ["components", index, key]):
                for ref in SECRET_REF.findall(text):
                    if ref not in declared:
                        listed = ", ".join(sorted(declared)) or "none"
                        yield (
                            json_pointer(path),
                            f"secret {ref!r} is used but not declared in secrets "
                            f"(declared: {listed})",
                        )


@record_rule(
    "deployment.secret-literal",
    contract=GRAPH,
    summary="An environment variable named after a declared secret takes its value from a "
    "${{ secrets.NAME }} reference, never from a literal.",
)
def secret_literal(graph: Any) -> Iterator[Issue]:
    for index, component in _components(graph):
        declared = set(component.get("secrets") or ())
        for name, value in (component.get("environment") or {}).items():
            if name in declared and not (isinstance(value, str) and SECRET_REF.search(value)):
                # The value is a secret written in clear: never repeat it.
                yield (
                    json_pointer(["components", index, "environment", name]),
                    f"{name} is declared in secrets but set to a literal value (not shown); "
                    f'write "${{{{ secrets.{name} }}}}" and keep the value in the secret store',
                )


def _quantity_problem(kind: str, value: Any) -> str | None:
    try:
        amount = parse_quantity(value)
    except QuantityError as exc:
        return str(exc)
    if amount < 0:
        return f"{kind} {value!r} is negative"
    if kind == "cpu" and (amount * 1000).denominator != 1:
        return f"cpu {value!r} is finer than 1m, which Kubernetes does not allow"
    if kind == "memory" and amount.denominator != 1:
        hint = " (did you mean Mi?)" if isinstance(value, str) and value.endswith("m") else ""
        return f"memory {value!r} is not a whole number of bytes{hint}"
    if kind == "gpu" and amount.denominator != 1:
        return f"gpu {value!r} is not a whole number of GPUs"
    return None


@record_rule(
    "deployment.quantity-parses",
    contract=GRAPH,
    summary="resources.cpu, memory and gpu are valid, non-negative Kubernetes quantities "
    "(cpu no finer than 1m, whole bytes, whole GPUs).",
)
def quantity_parses(graph: Any) -> Iterator[Issue]:
    for index, component in _components(graph):
        for kind, value in (component.get("resources") or {}).items():
            problem = _quantity_problem(kind, value)
            if problem is not None:
                yield json_pointer(["components", index, "resources", kind]), problem


def _gpu_count(value: Any) -> int | None:
    try:
        amount = parse_quantity(value)
    except QuantityError:
        return None  # reported by deployment.quantity-parses
    return int(amount) if amount.denominator == 1 and amount >= 0 else None


@record_rule(
    "deployment.gpu-visible-devices",
    contract=GRAPH,
    summary="Where resources.gpu and CUDA_VISIBLE_DEVICES are both given, they name as many GPUs.",
)
def gpu_visible_devices(graph: Any) -> Iterator[Issue]:
    for index, component in _components(graph):
        gpu = (component.get("resources") or {}).get("gpu")
        devices = (component.get("environment") or {}).get("CUDA_VISIBLE_DEVICES")
        if gpu is None or devices is None:
            continue
        count = _gpu_count(gpu)
        if count is None:
            continue
        entries = [e.strip() for e in str(devices).split(",") if e.strip()]
        pointer = json_pointer(["components", index, "environment", "CUDA_VISIBLE_DEVICES"])
        if len(set(entries)) != len(entries):
            yield pointer, f"CUDA_VISIBLE_DEVICES {devices!r} lists a device twice"
        elif len(entries) != count:
            yield (
                pointer,
                f"CUDA_VISIBLE_DEVICES {devices!r} names {len(entries)} device(s) but "
                f"resources.gpu asks for {count}",
            )


RULES: tuple[Rule, ...] = (
    unique_names,
    dependency_resolves,
    secrets_declared,
    secret_literal,
    quantity_parses,
    gpu_visible_devices,
)
