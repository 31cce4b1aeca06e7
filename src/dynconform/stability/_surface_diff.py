"""Surface diffs: CLI, env and metric changes as stability findings, judged by the policy.

Finding paths: ``cli:COMPONENT:--flag``, ``env:DYN_NAME``, ``metric:NAME`` (the exposed
metric name; the ``prometheus_names`` constant is given in the message). A flag whose old
name survives as an alias is not removed; a removed flag whose ``dest`` or env var reappears
on a new flag, or a metric constant whose value changed, is a rename.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

from dynconform.contracts import InputError
from dynconform.stability._findings import Finding
from dynconform.stability._model import ApiObject, Deprecation, Snapshot, Tier
from dynconform.stability._policy import ApiReport, apply_policy
from dynconform.stability._sources import PipOptions, materialize, parse_source
from dynconform.stability._surfaces import (
    SURFACE_KIND,
    CliOption,
    SurfaceSnapshot,
    build_surfaces,
    env_tier,
    read_surface_snapshot,
)
from dynconform.stability._tiers import DEFAULT_PERIODS
from dynconform.stability._waivers import Waiver


@dataclass(frozen=True, slots=True)
class SurfaceOptions:
    """How a surface source is read."""

    package: str | None = None
    components: tuple[str, ...] | None = None
    pip: PipOptions = field(default_factory=PipOptions)
    repo: Path | None = None
    use_cache: bool = True


def _is_snapshot(path: Path) -> bool:
    try:
        head = path.read_text(encoding="utf-8", errors="replace")[:4096]
    except OSError:
        return False
    return SURFACE_KIND in head


def snapshot_surfaces(source: str, options: SurfaceOptions | None = None) -> SurfaceSnapshot:
    """The surface snapshot of a source (any stability source kind, or a saved snapshot)."""
    options = options or SurfaceOptions()
    path = Path(source)
    if path.is_file() and path.suffix == ".json":
        if not _is_snapshot(path):
            raise InputError(
                f"{source}: not a surface snapshot (write one with 'surfaces snapshot')"
            )
        return read_surface_snapshot(path)
    spec = parse_source(source)
    tree = materialize(
        spec,
        package=options.package,
        pip=options.pip,
        repo=options.repo,
        use_cache=options.use_cache,
    )
    for root in tree.search_paths:
        if (root / tree.package).is_dir():
            return build_surfaces(
                root,
                tree.package,
                source=source,
                version=tree.version,
                components=options.components,
            )
    raise InputError(f"{source}: package {tree.package!r} is not a directory package")


def _covered(name: str, patterns: Iterable[str]) -> bool:
    """Whether a computed spelling (``--ais-*``, ``DYN_AIS_*``) still accepts ``name``."""
    return any("*" in p and fnmatchcase(name, p) for p in patterns)


def _change(old: CliOption, new: CliOption, path: str) -> list[Finding]:
    out: list[Finding] = []

    def add(kind: str, message: str, before: str | None = None, after: str | None = None) -> None:
        loc = new.location or None
        out.append(Finding(kind, path, old.tier, message, before, after, loc))

    lost = [a for a in old.names if a not in new.names]
    if lost:
        add("flag-changed", f"alias removed: {', '.join(lost)}")
    gained = [a for a in new.names if a not in old.names]
    if gained:
        out.append(Finding("flag-widened", path, new.tier, f"alias added: {', '.join(gained)}"))
    if old.type != new.type:
        add("flag-changed", "type changed", old.type, new.type)
    if old.choices is not None:
        if new.choices is not None:
            removed = [c for c in old.choices if c not in new.choices]
            added = [c for c in new.choices if c not in old.choices]
            if removed:
                add("flag-changed", f"choices removed: {', '.join(removed)}")
            if added:
                msg = f"choices added: {', '.join(added)}"
                out.append(Finding("flag-widened", path, new.tier, msg))
        else:
            out.append(Finding("flag-widened", path, new.tier, "choices no longer restricted"))
    elif new.choices is not None:
        add("flag-changed", f"choices now restricted to {', '.join(new.choices)}")
    if old.default != new.default:
        add("flag-changed", "default changed", old.default, new.default)
    if old.env and old.env != new.env:
        msg = f"env fallback {old.env} removed" if not new.env else "env fallback renamed"
        add("flag-changed", msg, old.env, new.env)
    elif new.env and not old.env:
        out.append(Finding("flag-widened", path, new.tier, f"env fallback {new.env} added"))
    if old.action != new.action:
        add("flag-changed", "action changed", old.action, new.action)
    if new.tier.rank < old.tier.rank:
        add("tier-demoted", f"tier {old.tier} -> {new.tier}", old.tier.value, new.tier.value)
    elif new.tier.rank > old.tier.rank:
        msg = f"tier {old.tier} -> {new.tier}"
        out.append(Finding("tier-promoted", path, new.tier, msg, old.tier.value, new.tier.value))
    return out


def _cli_findings(
    comp: str, old: Mapping[str, CliOption], new: Mapping[str, CliOption]
) -> list[Finding]:
    out: list[Finding] = []
    by_name = {n: opt for opt in new.values() for n in opt.names}
    matched: set[str] = set()
    missing: list[CliOption] = []
    for opt in old.values():
        twin = by_name.get(opt.name)
        if twin is None:
            missing.append(opt)
            continue
        matched.add(twin.name)
        out += _change(opt, twin, f"cli:{comp}:{opt.name}")
    fresh = {n: o for n, o in new.items() if n not in matched}
    patterns = [n for o in new.values() for n in o.names if "*" in n]
    for opt in missing:
        path = f"cli:{comp}:{opt.name}"
        if _covered(opt.name, patterns):
            continue
        twin = next(
            (o for o in fresh.values() if o.target == opt.target or (opt.env and o.env == opt.env)),
            None,
        )
        if twin is not None:
            fresh.pop(twin.name)
            msg = f"renamed to {twin.name}"
            out.append(
                Finding("surface-renamed", path, opt.tier, msg, opt.name, twin.name, twin.location)
            )
        else:
            out.append(
                Finding("surface-removed", path, opt.tier, "flag removed", location=opt.location)
            )
    for opt in fresh.values():
        msg = "flag added" + (f" (env {opt.env})" if opt.env else "")
        out.append(
            Finding("surface-added", f"cli:{comp}:{opt.name}", opt.tier, msg, location=opt.location)
        )
    return out


def diff_surfaces(old: SurfaceSnapshot, new: SurfaceSnapshot) -> list[Finding]:
    """Every CLI, env and metric change between two surface snapshots."""
    out: list[Finding] = []
    for comp in sorted(set(old.cli) | set(new.cli)):
        if comp not in new.cli:
            tier = max((o.tier for o in old.cli[comp].values()), key=lambda t: t.rank)
            msg = f"component removed with {len(old.cli[comp])} flags"
            out.append(Finding("surface-removed", f"cli:{comp}", tier, msg))
            continue
        if comp not in old.cli:
            msg = f"component added with {len(new.cli[comp])} flags"
            out.append(Finding("surface-added", f"cli:{comp}", Tier.STABLE, msg))
            continue
        out += _cli_findings(comp, old.cli[comp], new.cli[comp])
    for name in sorted(n for n in set(old.env) - set(new.env) if not _covered(n, new.env)):
        files = ", ".join(old.env[name][:3])
        out.append(
            Finding(
                "surface-removed", f"env:{name}", env_tier(name), f"no longer read (was in {files})"
            )
        )
    for name in sorted(set(new.env) - set(old.env)):
        files = ", ".join(new.env[name][:3])
        out.append(Finding("surface-added", f"env:{name}", env_tier(name), f"read in {files}"))
    old_values = {v: k for k, v in old.metrics.items()}
    new_values = {v: k for k, v in new.metrics.items()}
    renamed_to: set[str] = set()
    for value, const in sorted(old_values.items()):
        if value in new_values:
            continue
        moved = new.metrics.get(const)
        path = f"metric:{value}"
        if moved is not None and moved not in old_values:
            renamed_to.add(moved)
            msg = f"{const} renamed {value} -> {moved}"
            out.append(Finding("surface-renamed", path, Tier.STABLE, msg, value, moved))
        else:
            out.append(Finding("surface-removed", path, Tier.STABLE, f"{const} removed"))
    for value, const in sorted(new_values.items()):
        if value not in old_values and value not in renamed_to:
            out.append(Finding("surface-added", f"metric:{value}", Tier.STABLE, f"{const} added"))
    return sorted(out, key=Finding.sort_key)


def _policy_snapshot(snap: SurfaceSnapshot) -> Snapshot:
    """The deprecated flags, as objects the policy can look up."""
    objects = {}
    for comp, opts in snap.cli.items():
        for opt in opts.values():
            if opt.deprecated:
                path = f"cli:{comp}:{opt.name}"
                objects[path] = ApiObject(
                    path, "attribute", opt.tier, deprecated=Deprecation("help")
                )
    label = f"{snap.package} surfaces"
    return Snapshot(label, objects, source=snap.source, version=snap.version)


def compare_surfaces(
    old_source: str,
    new_source: str,
    options: SurfaceOptions | None = None,
    *,
    waivers: Sequence[Waiver] = (),
    periods: Mapping[Tier, int | None] | None = None,
    today: dt.date | None = None,
) -> ApiReport:
    """Compare the surfaces of two sources under the tier policy (``surfaces diff``)."""
    old = snapshot_surfaces(old_source, options)
    new = snapshot_surfaces(new_source, options)
    return judge_surfaces(old, new, waivers=waivers, periods=periods, today=today)


def judge_surfaces(
    old: SurfaceSnapshot,
    new: SurfaceSnapshot,
    *,
    waivers: Sequence[Waiver] = (),
    periods: Mapping[Tier, int | None] | None = None,
    today: dt.date | None = None,
) -> ApiReport:
    merged = dict(DEFAULT_PERIODS)
    merged.update(periods or {})
    return apply_policy(
        diff_surfaces(old, new),
        _policy_snapshot(old),
        _policy_snapshot(new),
        merged,
        waivers,
        today=today,
        tiers_origin="surfaces: help tags [EXPERIMENTAL]/[BETA], DYN_EXPERIMENTAL_ prefix",
    )
