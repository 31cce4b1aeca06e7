"""The Dynamo role of a graph component: frontend, planner, worker, prefill or decode."""

from __future__ import annotations

import itertools
from typing import Any

#: run_config outputs that are engines: a component with one is a worker.
ENGINES = frozenset(
    {
        "vllm",
        "sglang",
        "trtllm",
        "llamacpp",
        "mistralrs",
        "echo",
        "echo_core",
        "echo_full",
        "mocker",
    }
)


def _io(run_config: dict[str, Any]) -> tuple[str | None, str | None]:
    source, sink = run_config.get("input"), run_config.get("output")
    args = run_config.get("args")
    pairs: dict[str, Any] = {}
    if isinstance(args, dict):
        pairs = args
    elif isinstance(args, list):
        pairs = dict(a.split("=", 1) for a in args if isinstance(a, str) and "=" in a)
    source = source or pairs.get("input") or pairs.get("in")
    sink = sink or pairs.get("output") or pairs.get("out")
    return (None if source is None else str(source)), (None if sink is None else str(sink))


def _module(component: dict[str, Any]) -> str | None:
    """The Python module a component runs: ``python -m MODULE`` or the module of py_class."""
    argv = [*component.get("cmd", ()), *component.get("args", ())]
    for flag, value in itertools.pairwise(argv):
        if flag == "-m":
            return str(value)
    py_class = component.get("py_class")
    return py_class.partition(":")[0] if isinstance(py_class, str) else None


def _disaggregation_mode(component: dict[str, Any]) -> Any:
    options = (component.get("run_config") or {}).get("options") or {}
    mode = options.get("disaggregation_mode", options.get("disaggregation-mode"))
    argv = [str(a) for a in component.get("args", ())]
    for i, arg in enumerate(argv):
        if arg.startswith("--disaggregation-mode="):
            mode = arg.partition("=")[2]
        elif arg == "--disaggregation-mode" and i + 1 < len(argv):
            mode = argv[i + 1]
    return mode


def component_kind(component: dict[str, Any]) -> str | None:
    """The Dynamo role of a component, or None when it has no recognisable one.

    ``frontend``: HTTP input, or runs ``dynamo.frontend``. ``planner``: runs
    ``dynamo.planner``. ``worker``: an engine output (``vllm``, ``sglang``, ...) or runs
    ``dynamo.<engine>``; ``prefill``/``decode`` when its disaggregation mode (option
    ``disaggregation_mode`` or argument ``--disaggregation-mode``) says so.
    """
    source, sink = _io(component.get("run_config") or {})
    module = _module(component)
    if source == "http" or module == "dynamo.frontend":
        return "frontend"
    if module == "dynamo.planner":
        return "planner"
    if sink in ENGINES or (module or "").removeprefix("dynamo.") in ENGINES:
        mode = _disaggregation_mode(component)
        return mode if mode in ("prefill", "decode") else "worker"
    return None
