"""The surface policy: Kubernetes-style deprecation periods per surface kind.

A breaking change to a surface is allowed once the item was marked deprecated at least N
releases before (the same rule as for the Python API, see ``_policy``). N depends on the
surface kind and the tier, after the Kubernetes deprecation policy:

======  ======  ====  ===================================================================
kind    stable  beta  source
======  ======  ====  ===================================================================
cli     2       1     Rule #5a: GA flags 2 releases, beta 1 release after deprecation
env     2       1     configuration like flags (Dynamo reads most flags from ``DYN_*``)
metric  3       1     metric lifecycle: stable metrics hidden 3 releases after deprecation
crd     3       3     Rule #4a: beta API versions served 3 releases after deprecation
======  ======  ====  ===================================================================

Experimental and internal items are reported, never failed. Deprecation markers: a flag's
help, a metric's HELP or comment, a CRD field's description saying "deprecated" (or
``[DEPRECATED]``), a CRD version's ``deprecated: true``, an env variable the binary calls
deprecated or that backs a deprecated flag. ``history_surfaces`` walks 3+ releases and
counts each deprecation from the release where it first appeared.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Mapping, Sequence

from dynconform.contracts import InputError
from dynconform.stability._api import HistoryReport
from dynconform.stability._crd import crd_deprecations
from dynconform.stability._model import ApiObject, Deprecation, Snapshot, Tier
from dynconform.stability._policy import ApiReport, DeprecationHistory, apply_policy
from dynconform.stability._surface_changes import diff_surfaces
from dynconform.stability._surface_load import SurfaceOptions, snapshot_surfaces
from dynconform.stability._surfaces import SurfaceSnapshot, env_tier
from dynconform.stability._tiers import DEFAULT_PERIODS
from dynconform.stability._waivers import Waiver

SURFACE_PERIODS: dict[str, dict[Tier, int | None]] = {
    "cli": {Tier.STABLE: 2, Tier.BETA: 1},
    "env": {Tier.STABLE: 2, Tier.BETA: 1},
    "metric": {Tier.STABLE: 3, Tier.BETA: 1},
    "crd": {Tier.STABLE: 3, Tier.BETA: 3},
}
_ORIGIN = (
    "surfaces: tiers from help tags [EXPERIMENTAL]/[BETA], the DYN_EXPERIMENTAL_ prefix and "
    "CRD version names; deprecation periods per kind (Kubernetes policy)"
)


def surface_periods(
    periods: Mapping[Tier, int | None] | None = None,
    kind_periods: Mapping[str, Mapping[Tier, int | None]] | None = None,
) -> dict[str, dict[Tier, int | None]]:
    """The per-kind table: defaults, then per-tier overrides for every kind, then per-kind."""
    out = {k: dict(v) for k, v in SURFACE_PERIODS.items()}
    for table in out.values():
        table.update(periods or {})
    for kind, overrides in (kind_periods or {}).items():
        if kind not in out:
            raise InputError(f"unknown surface kind {kind!r} (known: {', '.join(SURFACE_PERIODS)})")
        out[kind].update(overrides)
    return out


def policy_snapshot(snap: SurfaceSnapshot) -> Snapshot:
    """The deprecated surface items, as objects the policy can look up."""
    objects: dict[str, ApiObject] = {}

    def add(path: str, tier: Tier, via: str) -> None:
        objects.setdefault(path, ApiObject(path, "attribute", tier, deprecated=Deprecation(via)))

    for comp, opts in snap.cli.items():
        for opt in opts.values():
            if opt.deprecated:
                add(f"cli:{comp}:{opt.name}", opt.tier, "help")
    for name in snap.deprecated_env():
        add(f"env:{name}", env_tier(name), "env")
    for family in snap.metric_families.values():
        if family.deprecated:
            add(f"metric:{family.name}", family.tier, "metric help")
    for path in crd_deprecations(snap.crds):
        add(path, Tier.STABLE, "CRD")
    label = f"{snap.package} surfaces"
    return Snapshot(label, objects, source=snap.source, version=snap.version or snap.source)


def judge_surfaces(
    old: SurfaceSnapshot,
    new: SurfaceSnapshot,
    *,
    waivers: Sequence[Waiver] = (),
    periods: Mapping[Tier, int | None] | None = None,
    kind_periods: Mapping[str, Mapping[Tier, int | None]] | None = None,
    today: dt.date | None = None,
    history: DeprecationHistory | None = None,
    old_policy: Snapshot | None = None,
    new_policy: Snapshot | None = None,
) -> ApiReport:
    """Judge the changes from ``old`` to ``new`` under the surface policy."""
    merged = dict(DEFAULT_PERIODS)
    merged.update(periods or {})
    return apply_policy(
        diff_surfaces(old, new),
        old_policy or policy_snapshot(old),
        new_policy or policy_snapshot(new),
        merged,
        waivers,
        today=today,
        history=history,
        tiers_origin=_ORIGIN,
        kind_periods=surface_periods(periods, kind_periods),
    )


def compare_surfaces(
    old_source: str,
    new_source: str,
    options: SurfaceOptions | None = None,
    *,
    waivers: Sequence[Waiver] = (),
    periods: Mapping[Tier, int | None] | None = None,
    kind_periods: Mapping[str, Mapping[Tier, int | None]] | None = None,
    today: dt.date | None = None,
) -> ApiReport:
    """Compare the surfaces of two sources under the policy (``surfaces diff``)."""
    old = snapshot_surfaces(old_source, options)
    new = snapshot_surfaces(new_source, options)
    return judge_surfaces(
        old, new, waivers=waivers, periods=periods, kind_periods=kind_periods, today=today
    )


def judge_history(
    snapshots: Sequence[SurfaceSnapshot],
    *,
    waivers: Sequence[Waiver] = (),
    periods: Mapping[Tier, int | None] | None = None,
    kind_periods: Mapping[str, Mapping[Tier, int | None]] | None = None,
    today: dt.date | None = None,
) -> HistoryReport:
    """Judge each consecutive pair of releases (oldest first), counting every deprecation
    from the release where it first appeared."""
    if len(snapshots) < 2:
        raise InputError(f"need at least two releases to compare, got {len(snapshots)}")
    policies = [policy_snapshot(s) for s in snapshots]
    if len({p.version for p in policies}) != len(policies):
        raise InputError("each release needs its own version (or source)")
    history = DeprecationHistory()
    history.record(policies[0])
    steps = []
    for (old, new), (old_p, new_p) in zip(
        itertools.pairwise(snapshots), itertools.pairwise(policies), strict=True
    ):
        history.record(new_p)
        steps.append(
            judge_surfaces(
                old,
                new,
                waivers=waivers,
                periods=periods,
                kind_periods=kind_periods,
                today=today,
                history=history,
                old_policy=old_p,
                new_policy=new_p,
            )
        )
    return HistoryReport(snapshots[-1].package, steps, history)


def history_surfaces(
    sources: Sequence[str],
    options: SurfaceOptions | None = None,
    *,
    waivers: Sequence[Waiver] = (),
    periods: Mapping[Tier, int | None] | None = None,
    kind_periods: Mapping[str, Mapping[Tier, int | None]] | None = None,
    today: dt.date | None = None,
) -> HistoryReport:
    """``surfaces history``: the releases' sources, oldest first."""
    snaps = [snapshot_surfaces(s, options) for s in sources]
    return judge_history(
        snaps, waivers=waivers, periods=periods, kind_periods=kind_periods, today=today
    )
