"""Semantic rules of the http contracts."""

from __future__ import annotations

from dynconform.contracts._rules import Rule

RULES: tuple[Rule, ...] = ()
