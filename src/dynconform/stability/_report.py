"""Turn API and surface comparisons into the versioned ``StabilityReport`` of ``reports``."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence

from dynconform import __version__
from dynconform.contracts import InputError
from dynconform.reports import (
    Change,
    StabilityFinding,
    StabilityReport,
    StabilityStep,
    StabilityWaiver,
    Verdict,
)
from dynconform.stability._api import (
    Governance,
    HistoryReport,
    LoadOptions,
    history_api,
    release_versions,
    select_versions,
)
from dynconform.stability._findings import Finding, Status
from dynconform.stability._kinds import KINDS
from dynconform.stability._policy import ApiReport, WaiverUse, version_key
from dynconform.stability._surface_load import SurfaceOptions, snapshot_surfaces
from dynconform.stability._surface_policy import judge_surfaces
from dynconform.stability._surfaces import SurfaceSnapshot

__all__ = ["change_of", "stability_history", "stability_report"]

_ADDED = frozenset({"object-added", "surface-added", "contract-added"})
_REMOVED = frozenset(
    {"object-removed", "reexport-removed", "export-removed", "surface-removed", "contract-removed"}
)


def change_of(kind: str) -> Change:
    """What a change kind does to the public surface: added, deprecated, removed, a breaking
    change or a compatible one."""
    if kind in _ADDED:
        return "added"
    if kind in _REMOVED:
        return "removed"
    if kind == "deprecated":
        return "deprecated"
    known = KINDS.get(kind)
    return "breaking" if known is not None and known.breaking else "changed"


def _verdict(finding: Finding) -> Verdict:
    if finding.status is Status.PENDING:
        return "reported" if finding.breaking else "info"
    verdict: Verdict = finding.status.value  # type: ignore[assignment]
    return verdict


def _finding(f: Finding) -> StabilityFinding:
    known = KINDS.get(f.kind)
    return StabilityFinding(
        kind=f.kind,
        path=f.path,
        tier=f.tier.value,
        change=change_of(f.kind),
        verdict=_verdict(f),
        message=f.message,
        domain=known.domain if known is not None else "api",
        breaking=known.breaking if known is not None else False,
        reason=f.reason,
        waiver_reason=f.reason if f.status is Status.WAIVED else None,
        location=f.location,
        subject=f.subject,
        old=f.old,
        new=f.new,
    )


def _waiver(use: WaiverUse) -> StabilityWaiver:
    w = use.waiver
    return StabilityWaiver(
        path=w.path,
        reason=w.reason,
        state=use.state,  # type: ignore[arg-type]
        matched=use.used,
        kinds=tuple(sorted(w.kinds)) if w.kinds else (),
        expires=w.expires.isoformat() if w.expires else None,
    )


def _versions(report: ApiReport) -> tuple[str, str]:
    return (
        report.old.version or report.old.source or "old",
        report.new.version or report.new.source or "new",
    )


def _step(parts: Sequence[tuple[str, ApiReport]]) -> StabilityStep:
    old, new = _versions(parts[0][1])
    findings = [_finding(f) for _, r in parts for f in r.findings]
    waivers = [_waiver(w) for _, r in parts for w in r.waivers]
    return StabilityStep(
        from_version=old,
        to_version=new,
        findings=tuple(findings),
        waivers=tuple(waivers),
        compared=tuple(name for name, _ in parts),
    )


def stability_report(
    source: HistoryReport | ApiReport | Sequence[ApiReport],
    *,
    surfaces: Sequence[ApiReport] = (),
    package: str | None = None,
    date: str | None = None,
    notes: Sequence[str] = (),
) -> StabilityReport:
    """The ``StabilityReport`` of an ``api history`` walk, one ``api diff`` or a list of
    comparisons; ``surfaces`` (``surfaces diff`` reports) join the API step of the same two
    versions, or become steps of their own."""
    if isinstance(source, HistoryReport):
        api = list(source.steps)
        name = package or source.project
    elif isinstance(source, ApiReport):
        api = [source]
        name = package or next(iter(sorted(source.new.distributions)), source.new.package)
    else:
        api = list(source)
        name = package or next((r.new.package for r in (*api, *surfaces)), "unknown")
    by_step: dict[tuple[str, str], list[tuple[str, ApiReport]]] = {}
    for report in api:
        by_step.setdefault(_versions(report), []).append(("api", report))
    for report in surfaces:
        by_step.setdefault(_versions(report), []).append(("surfaces", report))
    keys = sorted(by_step, key=lambda k: (version_key(k[0]), version_key(k[1])))
    steps = tuple(_step(by_step[k]) for k in keys)
    policy = next(iter((*api, *surfaces)), None)
    return StabilityReport(
        package=name,
        from_version=steps[0].from_version if steps else "",
        to_version=steps[-1].to_version if steps else "",
        steps=steps,
        date=date or dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        dynconform_version=__version__,
        tiers_origin=policy.tiers_origin if policy is not None else "defaults",
        deprecation_releases=(
            {t.value: n for t, n in sorted(policy.periods.items(), key=lambda x: -x[0].rank)}
            if policy is not None
            else {}
        ),
        notes=tuple(notes),
    )


def stability_history(
    project: str,
    start: str,
    end: str,
    *,
    options: LoadOptions | None = None,
    governance: Governance | None = None,
    surfaces: bool = False,
    pre: bool = False,
) -> StabilityReport:
    """The ``StabilityReport`` of a PyPI project's releases from ``start`` to ``end``
    (both must be released): the API of each consecutive pair under the tier policy, and
    with ``surfaces`` its CLI flags, env vars and metrics too (library entry point of
    ``report stability``)."""
    options = options or LoadOptions()
    governance = governance or Governance()
    if version_key(start) >= version_key(end):
        raise InputError(f"--from {start} must be an earlier release than --to {end}")
    if options.progress is not None:
        options.progress(f"listing the releases of {project}")
    available = release_versions(project, options.pip)
    for bound in (start, end):
        if bound not in available:
            raise InputError(f"{project} has no release {bound} on the package index")
    versions = select_versions(available, start, end, pre)
    history = history_api(project, versions, options, governance)
    judged: list[ApiReport] = []
    notes: list[str] = []
    if surfaces:
        judged, notes = _surface_steps(project, versions, options, governance)
    return stability_report(history, surfaces=judged, package=project, notes=notes)


def _surface_steps(
    project: str, versions: Sequence[str], options: LoadOptions, governance: Governance
) -> tuple[list[ApiReport], list[str]]:
    surface_options = SurfaceOptions(
        package=options.package,
        pip=options.pip,
        use_cache=options.use_cache,
        progress=options.progress,
    )
    snaps: list[SurfaceSnapshot | None] = []
    notes: list[str] = []
    for version in versions:
        try:
            snaps.append(snapshot_surfaces(f"pypi:{project}=={version}", surface_options))
        except InputError as exc:
            snaps.append(None)
            notes.append(f"surfaces of {version} not compared: {exc}")
    steps = []
    for old, new in itertools.pairwise(snaps):
        if old is None or new is None:
            continue
        steps.append(
            judge_surfaces(
                old,
                new,
                waivers=governance.waivers,
                periods=governance.periods or None,
                today=governance.today,
            )
        )
    return steps, notes
