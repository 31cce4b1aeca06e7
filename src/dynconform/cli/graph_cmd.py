"""``dynconform graph``: validate a graph deployment config, render it for Kubernetes."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from dynconform.cli._common import COMMANDS, Parser, UsageError, help_when_bare, nonempty
from dynconform.graph import (
    API_VERSIONS,
    DEFAULT_API_VERSION,
    Problem,
    RenderOptions,
    is_secret_name,
    load_graph,
    manifest_yaml,
    render_dgd,
    validate_graph,
)

EXIT_OK, EXIT_INVALID = 0, 1
TARGETS = ("k8s",)


def add_graph(sub: Any) -> None:
    p = sub.add_parser(
        "graph",
        help=COMMANDS["graph"].summary,
        description=(
            "Work with graph deployment configs (the SDK v2 graph IR: components with "
            "commands, run configs, resources, environment, secrets and dependencies). "
            "'validate' reports every problem at its line and column; 'render' turns a valid "
            "graph into a Kubernetes DynamoGraphDeployment."
        ),
        epilog=(
            "examples:\n"
            "  dynconform graph validate graph.yaml\n"
            "  dynconform graph render graph.yaml --target k8s -o dgd.yaml\n"
            "See 'dynconform graph validate --help' and 'dynconform graph render --help'."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = p.add_subparsers(dest="graph_command", metavar="ACTION", parser_class=Parser)
    _add_validate(actions)
    _add_render(actions)
    help_when_bare(p)


def _add_validate(actions: Any) -> None:
    p = actions.add_parser(
        "validate",
        help="check a graph file; every problem at its line and column",
        description=(
            "Check a graph file against the deployment.graph contract: keys given twice, the "
            "JSON Schema (unknown keys, wrong types), then the semantic rules: unique "
            "component names, dynamo:// dependencies naming components of the graph, "
            "${{ secrets.NAME }} references declared in 'secrets', resources that are "
            "Kubernetes quantities, resources.gpu matching CUDA_VISIBLE_DEVICES, no literal "
            "value for a declared secret. The rules run once the schema passes. Each problem "
            "is printed as FILE:LINE:COL: RULE: MESSAGE. Secret values are never printed. "
            "Exit 0 valid, 1 invalid, 2 unreadable or not YAML (one line on stderr)."
        ),
        epilog=(
            "examples:\n"
            "  dynconform graph validate graph.yaml\n"
            "  dynconform graph validate graph.yaml --json | jq '.problems[].rule'\n"
            "  cat graph.yaml | dynconform graph validate -\n"
            "\n"
            "output:\n"
            "  graph.yaml:25:5: schema.additionalProperties: unknown key 'arg' (did you mean "
            "'args'?)\n"
            "  graph.yaml:32:5: yaml.duplicate-key: duplicate key 'cmd' (first at line 31, "
            "column 5); only the last one is kept\n"
            "  graph.yaml: 2 problems"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", type=nonempty, help="graph file (YAML), or - for standard input")
    p.add_argument("--json", action="store_true", help="print the problems as JSON")
    p.set_defaults(func=cmd_validate)


def _add_render(actions: Any) -> None:
    p = actions.add_parser(
        "render",
        help="render a valid graph as a Kubernetes DynamoGraphDeployment",
        description=(
            "Validate the graph (as 'graph validate' does), then render it as a "
            "DynamoGraphDeployment for the Dynamo Kubernetes operator: one component per graph "
            "component, its container 'main' running cmd + arguments (py_class, args, "
            "in=/out= of run_config, run_config.args, run_config.options as --flag value), the "
            "environment, resources (cpu and memory requested, GPUs as limits) and node "
            "selector. v1beta1 (the default) lists spec.components with a podTemplate; "
            "v1alpha1 maps spec.services with extraPodSpec.mainContainer. "
            "${{ secrets.NAME }} becomes a secretKeyRef to key NAME of one Kubernetes Secret "
            "(--secret-name); secret_env entries are read whole (envFrom). Problems go to "
            "stderr as FILE:LINE:COL: RULE: MESSAGE. Exit 0 rendered, 1 the graph is invalid "
            "or cannot be expressed in Kubernetes, 2 usage or input error."
        ),
        epilog=(
            "examples:\n"
            "  dynconform graph render graph.yaml --target k8s\n"
            "  dynconform graph render graph.yaml --target k8s --api-version v1alpha1 "
            "-o dgd.yaml\n"
            "  dynconform graph render graph.yaml --target k8s \\\n"
            "      --image nvcr.io/nvidia/ai-dynamo/vllm-runtime:1.6.1 | kubectl apply -f -"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", type=nonempty, help="graph file (YAML), or - for standard input")
    p.add_argument("--target", required=True, choices=TARGETS, help="deployment target")
    p.add_argument(
        "--api-version",
        choices=API_VERSIONS,
        default=DEFAULT_API_VERSION,
        help=f"DynamoGraphDeployment API version (default {DEFAULT_API_VERSION})",
    )
    p.add_argument(
        "-o",
        "--output",
        type=nonempty,
        metavar="OUT",
        help="write the manifest to OUT (default: stdout)",
    )
    p.add_argument("--image", metavar="IMAGE", help="container image of components that name none")
    p.add_argument(
        "--secret-name",
        metavar="NAME",
        help="Kubernetes Secret holding the ${{ secrets.NAME }} values (default GRAPH-secrets)",
    )
    p.set_defaults(func=cmd_render)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' if n != 1 else ''}"


def _summary(file: str, problems: list[Problem], components: int) -> str:
    if not problems:
        return f"{file}: valid ({_count(components, 'component')})"
    return f"{file}: {_count(len(problems), 'problem')}"


def _components(data: Any) -> int:
    components = data.get("components") if isinstance(data, dict) else None
    return len(components) if isinstance(components, list) else 0


def cmd_validate(args: argparse.Namespace) -> int:
    doc = load_graph(args.file)
    problems = validate_graph(doc)
    if args.json:
        report = {
            "file": doc.name,
            "valid": not problems,
            "components": _components(doc.data),
            "problems": [p.to_dict() for p in problems],
        }
        print(json.dumps(report, indent=2))
    else:
        for problem in problems:
            print(problem.format(doc.name))
        print(_summary(doc.name, problems, _components(doc.data)))
    return EXIT_INVALID if problems else EXIT_OK


def cmd_render(args: argparse.Namespace) -> int:
    if args.secret_name is not None and not is_secret_name(args.secret_name):
        raise UsageError(
            f"--secret-name {args.secret_name!r} cannot name a Kubernetes Secret "
            "(lowercase letters, digits, '-' and '.')"
        )
    doc = load_graph(args.file)
    options = RenderOptions(
        api_version=args.api_version, image=args.image, secret_name=args.secret_name
    )
    rendering = render_dgd(doc, options)
    if rendering.manifest is None:
        for problem in rendering.problems:
            sys.stderr.write(problem.format(doc.name) + "\n")
        sys.stderr.write(
            f"{doc.name}: not rendered, {_count(len(rendering.problems), 'problem')}\n"
        )
        return EXIT_INVALID
    text = manifest_yaml(rendering, doc.name)
    if args.output in (None, "-"):
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text, encoding="utf-8")
        sys.stderr.write(
            f"wrote {args.output}: {rendering.manifest['kind']} "
            f"{rendering.manifest['apiVersion']}, {_count(_components(doc.data), 'component')}\n"
        )
    return EXIT_OK
