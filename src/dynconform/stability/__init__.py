"""API governance: snapshots and diffs of a package's public Python API, with stability tiers.

Static analysis with griffe (nothing is imported or installed). Re-exported aliases such as
``from dynamo._core import Client as Client`` are public API of the re-exporting module;
annotations, overloads, ``async``, ``__all__`` and base classes are compared; every object has
a tier (Experimental, Beta, Stable, or Internal) from in-code markers, a tiers file or a
default; a breaking change is allowed only after the tier's deprecation period::

    from dynconform.stability import compare_apis

    report = compare_apis("pypi:ai-dynamo==1.5.1", "pypi:ai-dynamo==1.6.1")
    for finding in report.violations:
        print(finding.tier, finding.kind, finding.display_path, finding.message)
"""

from __future__ import annotations

from dynconform.stability._api import (
    Governance,
    HistoryReport,
    Loaded,
    LoadOptions,
    bundled_config_for,
    compare_apis,
    compare_snapshots,
    history_api,
    load_snapshots,
    release_versions,
    select_versions,
    snapshot_api,
)
from dynconform.stability._contract_compat import compare_contracts, load_schema_set
from dynconform.stability._crd import Crd, CrdField, CrdVersion, collect_crds, diff_crds
from dynconform.stability._diff import diff_snapshots
from dynconform.stability._extract import build_snapshot
from dynconform.stability._findings import Finding, Status
from dynconform.stability._help_surface import parse_help
from dynconform.stability._kinds import BREAKING, KINDS, ChangeKind
from dynconform.stability._metric_surface import MetricFamily, parse_exposition
from dynconform.stability._model import ApiObject, Deprecation, Param, Snapshot, Tier
from dynconform.stability._native import scan_binary
from dynconform.stability._policy import ApiReport, DeprecationHistory, WaiverUse, apply_policy
from dynconform.stability._render import FORMATS as REPORT_FORMATS
from dynconform.stability._render import render, render_history
from dynconform.stability._report import change_of, stability_history, stability_report
from dynconform.stability._schema_compat import MODES as COMPAT_MODES
from dynconform.stability._schema_compat import Incompatibility, incompatibilities
from dynconform.stability._sources import PipOptions, cache_dir, parse_source
from dynconform.stability._surface_changes import diff_surfaces
from dynconform.stability._surface_load import SurfaceOptions, load_surfaces, snapshot_surfaces
from dynconform.stability._surface_policy import (
    SURFACE_PERIODS,
    compare_surfaces,
    history_surfaces,
    judge_history,
    judge_surfaces,
)
from dynconform.stability._surfaces import CliOption, SurfaceSnapshot, build_surfaces
from dynconform.stability._tiers import TierConfig, bundled_tiers, load_tiers, parse_config
from dynconform.stability._waivers import Waiver, load_waivers, parse_waivers

__all__ = [
    "BREAKING",
    "COMPAT_MODES",
    "KINDS",
    "REPORT_FORMATS",
    "SURFACE_PERIODS",
    "ApiObject",
    "ApiReport",
    "ChangeKind",
    "CliOption",
    "Crd",
    "CrdField",
    "CrdVersion",
    "Deprecation",
    "DeprecationHistory",
    "Finding",
    "Governance",
    "HistoryReport",
    "Incompatibility",
    "LoadOptions",
    "Loaded",
    "MetricFamily",
    "Param",
    "PipOptions",
    "Snapshot",
    "Status",
    "SurfaceOptions",
    "SurfaceSnapshot",
    "Tier",
    "TierConfig",
    "Waiver",
    "WaiverUse",
    "apply_policy",
    "build_snapshot",
    "build_surfaces",
    "bundled_config_for",
    "bundled_tiers",
    "cache_dir",
    "change_of",
    "collect_crds",
    "compare_apis",
    "compare_contracts",
    "compare_snapshots",
    "compare_surfaces",
    "diff_crds",
    "diff_snapshots",
    "diff_surfaces",
    "history_api",
    "history_surfaces",
    "incompatibilities",
    "judge_history",
    "judge_surfaces",
    "load_schema_set",
    "load_snapshots",
    "load_surfaces",
    "load_tiers",
    "load_waivers",
    "parse_config",
    "parse_exposition",
    "parse_help",
    "parse_source",
    "parse_waivers",
    "release_versions",
    "render",
    "render_history",
    "scan_binary",
    "select_versions",
    "snapshot_api",
    "snapshot_surfaces",
    "stability_history",
    "stability_report",
]
