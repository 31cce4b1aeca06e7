"""Semantic rules of the metrics contracts."""

from __future__ import annotations

from dynconform.contracts._rules import Rule

RULES: tuple[Rule, ...] = ()
