"""API governance: griffe-based diffs of public Python APIs with stability tiers. Not built yet."""

from __future__ import annotations

__all__: list[str] = []
