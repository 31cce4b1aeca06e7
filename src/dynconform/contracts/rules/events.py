"""Semantic rules of the events contracts."""

from __future__ import annotations

from dynconform.contracts._rules import Rule

RULES: tuple[Rule, ...] = ()
