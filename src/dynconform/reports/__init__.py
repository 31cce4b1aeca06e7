"""The versioned report model and its writers. Not built yet."""

from __future__ import annotations

__all__: list[str] = []
