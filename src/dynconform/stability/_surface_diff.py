"""``surfaces diff`` in one import: loading, diffing and judging surface snapshots.

The parts live in ``_surface_load`` (sources), ``_surface_changes`` (findings) and
``_surface_policy`` (periods per kind, history); this module gathers their entry points.
"""

from __future__ import annotations

from dynconform.stability._surface_changes import diff_families, diff_surfaces
from dynconform.stability._surface_load import SurfaceOptions, load_surfaces, snapshot_surfaces
from dynconform.stability._surface_policy import (
    SURFACE_PERIODS,
    compare_surfaces,
    history_surfaces,
    judge_history,
    judge_surfaces,
    policy_snapshot,
)

__all__ = [
    "SURFACE_PERIODS",
    "SurfaceOptions",
    "compare_surfaces",
    "diff_families",
    "diff_surfaces",
    "history_surfaces",
    "judge_history",
    "judge_surfaces",
    "load_surfaces",
    "policy_snapshot",
    "snapshot_surfaces",
]
