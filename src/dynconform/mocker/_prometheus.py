"""What the worker's and the frontend's Prometheus registries have in common."""

from __future__ import annotations

import time

import prometheus_client
from prometheus_client import CollectorRegistry, Gauge


def new_registry() -> CollectorRegistry:
    """An empty registry; no family writes ``_created`` samples (Dynamo's exporter has none)."""
    prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
    return CollectorRegistry(auto_describe=False)


def add_uptime(registry: CollectorRegistry, process_id: int) -> None:
    """``dynamo_component_uptime_seconds`` of the process ``process_id`` (its ``worker_id``
    label, in hex), counted from now."""
    started = time.monotonic()
    Gauge(
        "dynamo_component_uptime_seconds",
        "Total uptime of the DistributedRuntime in seconds",
        ["worker_id"],
        registry=registry,
    ).labels(f"{process_id:x}").set_function(lambda: time.monotonic() - started)
