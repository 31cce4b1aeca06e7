"""The reference implementation of every contract, backed by a mock engine. Not built yet: see the project's open work."""

from __future__ import annotations

__all__: list[str] = []
