"""Render a valid graph as a Kubernetes DynamoGraphDeployment (nvidia.com v1beta1 or v1alpha1).

v1beta1 (the operator's storage version) lists ``spec.components``, each with a ``name``, a
``type``, ``replicas`` and a plain ``podTemplate`` whose container ``main`` runs the component.
v1alpha1 maps ``spec.services`` by name, with ``componentType``, ``envs``, ``envFromSecret``,
``resources`` and ``extraPodSpec.mainContainer``. Secrets are always references into a
Kubernetes Secret, never values.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from dynconform.contracts.rules.deployment import SECRET_REF
from dynconform.graph._kinds import component_kind
from dynconform.graph._problems import Problem, sort_problems
from dynconform.graph._validate import validate_graph
from dynconform.graph._yaml import GraphDocument

API_GROUP = "nvidia.com"
KIND = "DynamoGraphDeployment"
API_VERSIONS = ("v1beta1", "v1alpha1")
DEFAULT_API_VERSION = "v1beta1"
#: The operator's name for the container that runs a component.
MAIN_CONTAINER = "main"
GPU_RESOURCE = "nvidia.com/gpu"
#: The environment variable Dynamo components read their service config from.
DEPLOYMENT_CONFIG_ENV = "DYN_DEPLOYMENT_CONFIG"
#: Prefix of the variables that carry a secret into a longer value or an argument.
SECRET_ENV_PREFIX = "DYN_SECRET_"
DEFAULT_CMD = ("dynamo", "serve")
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_WHOLE_REF = re.compile(r"\s*" + SECRET_REF.pattern + r"\s*")


_PATH_PART = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_HOST = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
#: an image left to be filled in, as Dynamo's own examples write it (``<pre-built-image>``)
PLACEHOLDER = re.compile(r"<[^<>\s]+>")
#: a container image reference, as the OCI distribution grammar spells it
IMAGE_REFERENCE = re.compile(
    rf"(?:{_HOST}(?:\.{_HOST})*(?::[0-9]+)?/)?{_PATH_PART}(?:/{_PATH_PART})*"
    r"(?::[\w][\w.-]{0,127})?(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?\Z"
)


@dataclass(frozen=True, slots=True)
class RenderOptions:
    """How to render: the DGD API version, the image of components that name none, and the
    Kubernetes Secret that holds the ``${{ secrets.NAME }}`` values (default ``<graph>-secrets``).
    """

    api_version: str = DEFAULT_API_VERSION
    image: str | None = None
    secret_name: str | None = None


@dataclass(slots=True)
class Rendering:
    """The manifest, or the problems that prevent it."""

    manifest: dict[str, Any] | None
    problems: list[Problem] = field(default_factory=list)
    #: Name of the Kubernetes Secret the manifest reads, and the keys it reads from it.
    secret_name: str = ""
    secret_keys: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.manifest is not None


def is_secret_name(name: str) -> bool:
    """Whether ``name`` can name a Kubernetes Secret (a DNS-1123 subdomain)."""
    return len(name) <= 253 and _DNS_SUBDOMAIN.fullmatch(name) is not None


def k8s_name(name: str) -> str:
    """A component name as Kubernetes spells it: ``_`` becomes ``-``."""
    return name.replace("_", "-")


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value)


def _quantity(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _options(options: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for key, value in options.items():
        flag = "--" + key.lstrip("-").replace("_", "-")
        if value is True:
            out.append(flag)
        elif value is False:
            continue
        elif isinstance(value, list):
            out += [flag, *(_scalar(v) for v in value)]
        else:
            out += [flag, _scalar(value)]
    return out


class _Secrets:
    """Turns ``${{ secrets.NAME }}`` into Kubernetes references to one Secret."""

    def __init__(self, secret_name: str) -> None:
        self.secret_name = secret_name
        self.keys: list[str] = []

    def ref(self, key: str) -> dict[str, Any]:
        if key not in self.keys:
            self.keys.append(key)
        return {"secretKeyRef": {"name": self.secret_name, "key": key}}


class _Container:
    """Environment, command and arguments of one component's main container."""

    def __init__(self, secrets: _Secrets) -> None:
        self.secrets = secrets
        self.helpers: dict[str, dict[str, Any]] = {}

    def text(self, value: str) -> str:
        """Kubernetes text: ``$`` escaped, each secret via a variable defined before it."""
        # Kubernetes expands $(VAR) in env values, command and args; $$ keeps a literal $.
        parts = SECRET_REF.split(value)  # text, secret name, text, secret name, ..., text
        return "".join(
            part.replace("$", "$$") if i % 2 == 0 else f"$({self.helper(part)})"
            for i, part in enumerate(parts)
        )

    def helper(self, key: str) -> str:
        name = SECRET_ENV_PREFIX + key
        self.helpers.setdefault(name, {"name": name, "valueFrom": self.secrets.ref(key)})
        return name

    def env_entry(self, name: str, value: Any) -> dict[str, Any]:
        if isinstance(value, str):
            whole = _WHOLE_REF.fullmatch(value)
            if whole is not None:
                return {"name": name, "valueFrom": self.secrets.ref(whole.group(1))}
            return {"name": name, "value": self.text(value)}
        return {"name": name, "value": _scalar(value)}


@dataclass(slots=True)
class _Plan:
    """One component, in terms both API versions share."""

    name: str
    kind: str | None
    replicas: int
    image: str
    command: list[str]
    args: list[str]
    env: list[dict[str, Any]]
    env_from: list[str]
    requests: dict[str, str]
    gpu: str | None
    node_selector: dict[str, str]


class _Renderer:
    def __init__(self, doc: GraphDocument, options: RenderOptions, secret_name: str) -> None:
        self.doc = doc
        self.options = options
        self.secrets = _Secrets(secret_name)
        self.problems: list[Problem] = []

    def problem(self, pointer: str, rule: str, message: str, *, key: bool = False) -> None:
        where = self.doc.position(pointer, key=key)
        self.problems.append(Problem(where.line, where.column, rule, pointer, message))

    def names(self, components: list[dict[str, Any]]) -> list[str]:
        names: list[str] = []
        first: dict[str, str] = {}
        for index, component in enumerate(components):
            name = k8s_name(component["name"])
            pointer = f"/components/{index}/name"
            if len(name) > 63 or _DNS_LABEL.fullmatch(name) is None:
                self.problem(
                    pointer,
                    "k8s.component-name",
                    f"{component['name']!r} becomes {name!r}, not a Kubernetes name (letters, "
                    "digits and '-', starting and ending with a letter or digit, at most 63)",
                )
            elif name in first:
                self.problem(
                    pointer,
                    "k8s.component-name",
                    f"{component['name']!r} and {first[name]!r} both become {name!r}",
                )
            else:
                first[name] = component["name"]
            names.append(name)
        return names

    def plan(self, index: int, component: dict[str, Any], name: str) -> _Plan:
        base = f"/components/{index}"
        image = component.get("image") or self.options.image
        if not image:
            self.problem(
                base,
                "k8s.image",
                f"component {component['name']!r} has no image: give it 'image:' or pass --image",
            )
        elif not isinstance(image, str) or not (
            IMAGE_REFERENCE.match(image) or PLACEHOLDER.fullmatch(image)
        ):
            self.problem(
                f"{base}/image" if component.get("image") else base,
                "k8s.image",
                f"component {component['name']!r}: {image!r} is not an image reference "
                "([REGISTRY/]REPOSITORY[:TAG][@DIGEST])",
            )
        container = _Container(self.secrets)
        run_config = component.get("run_config") or {}
        args: list[str] = []
        if "py_class" in component:
            args.append(component["py_class"])
        args += component.get("args", [])
        source, sink = run_config.get("input"), run_config.get("output")
        if source is not None:
            args.append(f"in={source}")
        if sink is not None:
            args.append(f"out={sink}")
        raw = run_config.get("args")
        if isinstance(raw, dict):
            args += [f"{k}={_scalar(v)}" for k, v in raw.items()]
        elif isinstance(raw, list):
            args += raw
        args += _options(run_config.get("options") or {})
        command = [container.text(c) for c in component.get("cmd", DEFAULT_CMD)]
        args = [container.text(a) for a in args]
        env = [
            container.env_entry(key, value)
            for key, value in (component.get("environment") or {}).items()
        ]
        if "parameters" in component:
            config = json.dumps({component["name"]: component["parameters"]}, sort_keys=True)
            env.append({"name": DEPLOYMENT_CONFIG_ENV, "value": container.text(config)})
        env = list(container.helpers.values()) + env
        self.check_env(base, set(container.helpers), component)
        env_from = list(component.get("secret_env", []))
        for j, secret in enumerate(env_from):
            if not is_secret_name(secret):
                self.problem(
                    f"{base}/secret_env/{j}",
                    "k8s.secret-name",
                    f"{secret!r} cannot name a Kubernetes Secret (lowercase letters, digits, "
                    "'-' and '.')",
                )
        resources = component.get("resources") or {}
        requests = {k: _quantity(resources[k]) for k in ("cpu", "memory") if k in resources}
        gpu = _quantity(resources["gpu"]) if "gpu" in resources else None
        return _Plan(
            name=name,
            kind=component_kind(component),
            replicas=component.get("replicas", 1),
            image=image or "",
            command=command,
            args=args,
            env=env,
            env_from=env_from,
            requests=requests,
            gpu=gpu,
            node_selector=dict(component.get("node_selector") or {}),
        )

    def check_env(self, base: str, generated: set[str], component: dict[str, Any]) -> None:
        """Report environment variables that collide with the ones render adds."""
        if "parameters" in component:
            generated.add(DEPLOYMENT_CONFIG_ENV)
        for name in component.get("environment") or {}:
            if name in generated:
                self.problem(
                    f"{base}/environment/{name}",
                    "k8s.env-name",
                    f"{name} is set by the renderer itself (from "
                    f"{'parameters' if name == DEPLOYMENT_CONFIG_ENV else 'a secret reference'}); "
                    "use another name",
                    key=True,
                )


def _v1beta1(plan: _Plan) -> dict[str, Any]:
    container: dict[str, Any] = {"name": MAIN_CONTAINER, "image": plan.image}
    container["command"] = plan.command
    if plan.args:
        container["args"] = plan.args
    if plan.env:
        container["env"] = plan.env
    if plan.env_from:
        container["envFrom"] = [{"secretRef": {"name": name}} for name in plan.env_from]
    resources: dict[str, Any] = {}
    if plan.gpu is not None:
        resources["limits"] = {GPU_RESOURCE: plan.gpu}
    if plan.requests:
        resources["requests"] = plan.requests
    if resources:
        container["resources"] = resources
    pod: dict[str, Any] = {"containers": [container]}
    if plan.node_selector:
        pod["nodeSelector"] = plan.node_selector
    entry: dict[str, Any] = {"name": plan.name}
    if plan.kind is not None:
        entry["type"] = plan.kind
    entry["replicas"] = plan.replicas
    entry["podTemplate"] = {"spec": pod}
    return entry


def _v1alpha1(plan: _Plan) -> dict[str, Any]:
    service: dict[str, Any] = {}
    if plan.kind is not None:
        service["componentType"] = plan.kind if plan.kind in ("frontend", "planner") else "worker"
        if plan.kind in ("prefill", "decode"):
            service["subComponentType"] = plan.kind
    service["replicas"] = plan.replicas
    if len(plan.env_from) == 1:
        service["envFromSecret"] = plan.env_from[0]
    if plan.env:
        service["envs"] = plan.env
    resources: dict[str, Any] = {}
    if plan.requests:
        resources["requests"] = plan.requests
    if plan.gpu is not None:
        resources["limits"] = {"gpu": plan.gpu}
    if resources:
        service["resources"] = resources
    main: dict[str, Any] = {"image": plan.image, "command": plan.command}
    if plan.args:
        main["args"] = plan.args
    if len(plan.env_from) > 1:
        main["envFrom"] = [{"secretRef": {"name": name}} for name in plan.env_from]
    extra: dict[str, Any] = {"mainContainer": main}
    if plan.node_selector:
        extra["nodeSelector"] = plan.node_selector
    service["extraPodSpec"] = extra
    return service


def render_dgd(doc: GraphDocument, options: RenderOptions | None = None) -> Rendering:
    """Validate the graph, then render it as a DynamoGraphDeployment.

    Problems of the graph, or ones only Kubernetes has (names it cannot take, a missing image,
    Secret names), are returned instead of a manifest.
    """
    options = options or RenderOptions()
    if options.api_version not in API_VERSIONS:
        raise ValueError(
            f"unknown API version {options.api_version!r}; choose one of {', '.join(API_VERSIONS)}"
        )
    problems = validate_graph(doc)
    if problems:
        return Rendering(None, problems)
    graph = doc.data
    secret_name = options.secret_name or f"{graph['name']}-secrets"
    if not is_secret_name(secret_name):
        raise ValueError(f"{secret_name!r} cannot name a Kubernetes Secret")
    renderer = _Renderer(doc, options, secret_name)
    components = graph["components"]
    names = renderer.names(components)
    plans = [renderer.plan(i, c, names[i]) for i, c in enumerate(components)]
    if renderer.problems:
        return Rendering(None, sort_problems(renderer.problems))
    spec: dict[str, Any]
    if options.api_version == "v1beta1":
        spec = {"components": [_v1beta1(plan) for plan in plans]}
    else:
        spec = {"services": {plan.name: _v1alpha1(plan) for plan in plans}}
    manifest = {
        "apiVersion": f"{API_GROUP}/{options.api_version}",
        "kind": KIND,
        "metadata": {"name": graph["name"]},
        "spec": spec,
    }
    return Rendering(manifest, [], secret_name, sorted(renderer.secrets.keys))


def manifest_yaml(rendering: Rendering, source: str) -> str:
    """The manifest as YAML, headed by comments naming its source and the Secret it reads."""
    if rendering.manifest is None:
        raise ValueError("nothing was rendered")
    lines = [f"# Rendered by 'dynconform graph render' from {source}; edit the graph, not this."]
    if rendering.secret_keys:
        keys = ", ".join(rendering.secret_keys)
        literals = " ".join(f"--from-literal={key}=..." for key in rendering.secret_keys)
        lines += [
            f"# Secret references read the keys {keys} of Secret {rendering.secret_name}:",
            f"#   kubectl create secret generic {rendering.secret_name} {literals}",
        ]
    body = yaml.safe_dump(rendering.manifest, sort_keys=False, default_flow_style=False, width=4096)
    return "\n".join(lines) + "\n" + body
