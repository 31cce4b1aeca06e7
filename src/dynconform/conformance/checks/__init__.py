"""The bundled check catalogue, one module per surface; :func:`default_checks` assembles it."""

from __future__ import annotations

from dynconform.conformance._check import CheckRegistry
from dynconform.conformance.checks import (
    errors,
    events,
    fault,
    fuzz,
    health,
    http_api,
    metrics,
    openai,
    registration,
    streaming,
)

__all__ = ["default_checks"]


def default_checks() -> CheckRegistry:
    """A registry holding every bundled check."""
    registry = CheckRegistry()
    for module in (
        registration,
        http_api,
        errors,
        streaming,
        health,
        metrics,
        events,
        fault,
        fuzz,
        openai,
    ):
        for item in module.CHECKS:
            registry.add(item)
    return registry
