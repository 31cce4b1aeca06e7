"""Semantic rules of the request-plane contracts."""

from __future__ import annotations

from dynconform.contracts._rules import Rule

RULES: tuple[Rule, ...] = ()
