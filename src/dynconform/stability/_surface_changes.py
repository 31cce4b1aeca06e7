"""Surface diffs: CLI, env, metric and CRD changes as stability findings.

Finding paths: ``cli:COMPONENT:--flag``, ``env:DYN_NAME``, ``metric:NAME`` (the exposed
metric name; the ``prometheus_names`` constant is given in the message) and
``crd:KIND.VERSION.FIELD.PATH``. A flag whose old name survives as an alias is not removed;
a removed flag whose ``dest`` or env var reappears on a new flag, or a metric constant
whose value changed, is a rename. Metric families compare type (a change is breaking) and
label names (a removed label is breaking, an added one compatible) where both sides know
them. Items newly marked deprecated are listed (kind ``deprecated``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase

from dynconform.stability._crd import diff_crds
from dynconform.stability._findings import Finding, value_changes
from dynconform.stability._metric_surface import MetricFamily
from dynconform.stability._model import Tier
from dynconform.stability._surfaces import CliOption, SurfaceSnapshot, env_origin, env_tier


def _covered(name: str, patterns: Iterable[str]) -> bool:
    """Whether a computed spelling (``--ais-*``, ``DYN_AIS_*``) still accepts ``name``."""
    return any("*" in p and fnmatchcase(name, p) for p in patterns)


def _change(old: CliOption, new: CliOption, path: str) -> list[Finding]:
    out: list[Finding] = []

    def add(kind: str, message: str, before: str | None = None, after: str | None = None) -> None:
        loc = new.location or None
        out.append(Finding(kind, path, old.tier, message, before, after, loc))

    def values(
        old_values: tuple[str, ...] | None, new_values: tuple[str, ...] | None, noun: str
    ) -> None:
        narrowed, widened = value_changes(old_values, new_values, noun)
        for msg in narrowed:
            add("flag-changed", msg)
        out.extend(Finding("flag-widened", path, new.tier, msg) for msg in widened)

    values(old.names, new.names, "alias")
    if old.type != new.type:
        add("flag-changed", "type changed", old.type, new.type)
    values(old.choices, new.choices, "choices")
    if old.default != new.default:
        add("flag-changed", "default changed", old.default, new.default)
    if old.env and old.env != new.env:
        msg = f"env fallback {old.env} removed" if not new.env else "env fallback renamed"
        add("flag-changed", msg, old.env, new.env)
    elif new.env and not old.env:
        out.append(Finding("flag-widened", path, new.tier, f"env fallback {new.env} added"))
    if old.action != new.action:
        add("flag-changed", "action changed", old.action, new.action)
    if new.deprecated and not old.deprecated:
        out.append(Finding("deprecated", path, new.tier, "flag marked deprecated"))
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
    """Every CLI, env, metric and CRD change between two surface snapshots."""
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
    out += _env_findings(old, new)
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
    out += diff_families(old.metric_families, new.metric_families)
    out += diff_crds(old.crds, new.crds)
    return sorted(out, key=Finding.sort_key)


def _env_findings(old: SurfaceSnapshot, new: SurfaceSnapshot) -> list[Finding]:
    out: list[Finding] = []
    for name in sorted(n for n in set(old.env) - set(new.env) if not _covered(n, new.env)):
        files = old.env[name]
        where = ", ".join(files[:3])
        origin = env_origin(files)
        msg = f"no longer read (was in {where})" + ("" if origin == "python" else f" [{origin}]")
        out.append(Finding("surface-removed", f"env:{name}", env_tier(name), msg))
    for name in sorted(set(new.env) - set(old.env)):
        files = new.env[name]
        origin = env_origin(files)
        msg = f"read in {', '.join(files[:3])}" + ("" if origin == "python" else f" [{origin}]")
        out.append(Finding("surface-added", f"env:{name}", env_tier(name), msg))
    was = old.deprecated_env()
    for name in sorted((new.deprecated_env() - was) & set(old.env) & set(new.env)):
        out.append(Finding("deprecated", f"env:{name}", env_tier(name), "env variable deprecated"))
    return out


def _family_changes(key: str, a: MetricFamily, b: MetricFamily) -> list[Finding]:
    out: list[Finding] = []
    path = f"metric:{b.name}"
    via = f"{key}: " if key != b.name else ""
    if a.type is not None and b.type is not None and a.type != b.type:
        msg = f"{via}type changed"
        out.append(Finding("metric-type-changed", path, a.tier, msg, a.type, b.type))
    if a.labels is not None and b.labels is not None:  # None: not known, not compared
        lost, gained = value_changes(a.labels, b.labels, f"{via}labels")
        out.extend(Finding("metric-label-removed", path, a.tier, msg) for msg in lost)
        out.extend(Finding("metric-label-added", path, b.tier, msg) for msg in gained)
    if b.deprecated and not a.deprecated:
        out.append(Finding("deprecated", path, b.tier, f"{via}metric marked deprecated"))
    if b.tier.rank < a.tier.rank:
        msg = f"tier {a.tier} -> {b.tier}"
        out.append(Finding("tier-demoted", path, a.tier, msg, a.tier.value, b.tier.value))
    return out


def diff_families(
    old: Mapping[str, MetricFamily], new: Mapping[str, MetricFamily]
) -> list[Finding]:
    """Type, label and deprecation changes of metric families; families of a live
    exposition are also reported when they appear or disappear (those of
    ``prometheus_names.py`` are covered by the constants)."""
    out: list[Finding] = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if a is not None and b is not None:
            out += _family_changes(key, a, b)
        elif a is not None and a.origin == "exposition":
            msg = f"{a.type or 'metric'} no longer exposed"
            out.append(Finding("surface-removed", f"metric:{a.name}", a.tier, msg))
        elif b is not None and b.origin == "exposition":
            labels = f" {{{','.join(b.labels)}}}" if b.labels else ""
            msg = f"{b.type or 'metric'}{labels} exposed"
            out.append(Finding("surface-added", f"metric:{b.name}", b.tier, msg))
    return out
