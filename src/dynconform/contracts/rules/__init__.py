"""The semantic rules that ship with dynconform, one module per contract family."""

from __future__ import annotations

from dynconform.contracts._rules import RuleRegistry
from dynconform.contracts.rules import (
    correlation,
    deployment,
    discovery,
    events,
    health,
    http,
    metrics,
    report,
    request_plane,
)

__all__ = ["default_rules"]


def default_rules() -> RuleRegistry:
    """A registry holding every bundled rule."""
    registry = RuleRegistry()
    families = (discovery, events, health, metrics, http, request_plane, deployment, report)
    for module in (*families, correlation):
        for rule in module.RULES:
            registry.add(rule)
    return registry
