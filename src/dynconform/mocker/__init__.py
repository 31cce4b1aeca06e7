"""The reference implementation of every contract, backed by a mock engine. Not built yet."""

from __future__ import annotations

__all__: list[str] = []
