"""The conformance suite and its runner. Not built yet."""

from __future__ import annotations

__all__: list[str] = []
