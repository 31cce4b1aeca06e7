"""Graph deployment configs: validate them at line and column, render them for Kubernetes.

A graph file (the SDK v2 graph IR: components with commands, run configs, resources,
environment, secrets and dependencies) is read as YAML with the position of every node, then
checked against the ``deployment.graph`` contract; each problem points to the line and column
of the node it concerns::

    from dynconform.graph import load_graph, render_dgd, validate_graph

    doc = load_graph("graph.yaml")
    for problem in validate_graph(doc):
        print(problem.format(doc.name))
    rendering = render_dgd(doc)           # a DynamoGraphDeployment (nvidia.com/v1beta1)

Secret values are never resolved or printed: ``${{ secrets.NAME }}`` becomes a reference to a
key of a Kubernetes Secret.
"""

from __future__ import annotations

from dynconform.graph._k8s import (
    API_VERSIONS,
    DEFAULT_API_VERSION,
    Rendering,
    RenderOptions,
    is_secret_name,
    k8s_name,
    manifest_yaml,
    render_dgd,
)
from dynconform.graph._kinds import ENGINES, component_kind
from dynconform.graph._problems import Problem
from dynconform.graph._secrets import Redactor
from dynconform.graph._validate import validate_graph
from dynconform.graph._yaml import GraphDocument, Position, load_graph, parse_graph

__all__ = [
    "API_VERSIONS",
    "DEFAULT_API_VERSION",
    "ENGINES",
    "GraphDocument",
    "Position",
    "Problem",
    "Redactor",
    "RenderOptions",
    "Rendering",
    "component_kind",
    "is_secret_name",
    "k8s_name",
    "load_graph",
    "manifest_yaml",
    "parse_graph",
    "render_dgd",
    "validate_graph",
]
