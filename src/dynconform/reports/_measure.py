"""Latency series recorded during a run: counts and percentiles per named series."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["PERCENTILES", "Measurement", "percentile"]

#: the percentiles every series reports
PERCENTILES = (50, 90, 99)


def percentile(ordered: list[float], p: float) -> float:
    """The nearest-rank ``p``-th percentile of an ascending, non-empty list."""
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass(frozen=True, slots=True)
class Measurement:
    """One named series of latencies in milliseconds (e.g. ``http.chat.ttft``)."""

    name: str
    count: int
    min: float
    mean: float
    max: float
    #: percentile -> value, for each of :data:`PERCENTILES`
    percentiles: Mapping[int, float]
    unit: str = "ms"

    @classmethod
    def of(cls, name: str, samples: Iterable[float], unit: str = "ms") -> Measurement:
        """Summarise non-empty ``samples`` (already in ``unit``)."""
        ordered = sorted(samples)
        if not ordered:
            raise ValueError(f"measurement {name!r} has no samples")
        return cls(
            name=name,
            count=len(ordered),
            min=round(ordered[0], 3),
            mean=round(sum(ordered) / len(ordered), 3),
            max=round(ordered[-1], 3),
            percentiles={p: round(percentile(ordered, p), 3) for p in PERCENTILES},
            unit=unit,
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"unit": self.unit, "count": self.count, "min": self.min}
        out.update({f"p{p}": v for p, v in sorted(self.percentiles.items())})
        out.update({"mean": self.mean, "max": self.max})
        return out

    @classmethod
    def from_dict(cls, name: str, data: Mapping[str, Any]) -> Measurement:
        return cls(
            name=name,
            count=int(data["count"]),
            min=float(data["min"]),
            mean=float(data["mean"]),
            max=float(data["max"]),
            percentiles={
                int(key[1:]): float(value)
                for key, value in data.items()
                if key.startswith("p") and key[1:].isdigit()
            },
            unit=str(data.get("unit", "ms")),
        )
