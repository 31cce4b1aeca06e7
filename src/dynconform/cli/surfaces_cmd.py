"""``dynconform surfaces ...``: CLI flags, env variables, metrics and CRDs under the policy."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from dynconform.cli._common import COMMANDS, UsageError, help_when_bare, nonempty, progress
from dynconform.cli.api_cmd import emit_text as _emit
from dynconform.cli.api_cmd import parse_periods as _tier_periods
from dynconform.stability import (
    REPORT_FORMATS,
    SURFACE_PERIODS,
    PipOptions,
    SurfaceOptions,
    Tier,
    compare_surfaces,
    history_surfaces,
    load_surfaces,
    load_waivers,
    render,
    render_history,
)

_SOURCES = (
    "SOURCE is a directory, a wheel, a directory of wheels, pypi:NAME==VERSION, "
    "git:REF[:SUBDIR[,SUBDIR]], a surface snapshot JSON written by 'surfaces snapshot', "
    "an http(s):// /metrics URL (its metric families), or a CRD YAML file (or a tree of "
    "CRDs). Nothing is imported or run: flags come from the argparse calls in the code, "
    "Rust env variables from the strings of the compiled extension, CRDs from crds/ "
    "directories and *crd*.yaml files."
)
_POLICY = (
    "Deprecation periods per kind (Kubernetes policy), in releases before removal: "
    + "; ".join(
        f"{kind} " + ", ".join(f"{t.value} {n}" for t, n in table.items())
        for kind, table in SURFACE_PERIODS.items()
    )
    + "; experimental items are reported only."
)


def _add_load(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("sources")
    g.add_argument("--package", help="top-level package to read (default: detected)")
    g.add_argument(
        "--component",
        action="append",
        default=[],
        metavar="MODULE",
        help="component module whose flags to read, e.g. dynamo.frontend (repeatable; "
        "default: every subpackage with a __main__)",
    )
    g.add_argument("--index-url", help="package index for pypi: sources (pip --index-url)")
    g.add_argument("--no-index", action="store_true", help="do not use any package index")
    g.add_argument(
        "--repo",
        type=nonempty,
        help="git repository for git: sources (default: current directory)",
    )


def _add_policy(p: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    g = p.add_argument_group("policy and output")
    g.add_argument("--waivers", type=nonempty, metavar="FILE", help="YAML file of waivers")
    g.add_argument(
        "--deprecation",
        action="append",
        default=[],
        metavar="[KIND:]TIER=N",
        help="releases a deprecation must precede a breaking change: TIER=N for every kind, "
        "KIND:TIER=N for one of cli, env, metric, crd (N or 'none'; repeatable)",
    )
    g.add_argument("--format", choices=REPORT_FORMATS, default="text", help="output format")
    g.add_argument("-o", "--output", type=nonempty, metavar="FILE", help="write the report to FILE")
    g.add_argument("--max", type=int, default=10, metavar="N", help="findings listed per kind")
    return g


def add_surfaces(sub: Any) -> None:
    """Add the ``surfaces`` command group to an argparse subparsers object."""
    p = sub.add_parser(
        "surfaces",
        help=COMMANDS["surfaces"].summary,
        description="Governance of the non-Python surfaces of a Dynamo release. " + _SOURCES,
        epilog=(
            "examples:\n"
            "  dynconform surfaces snapshot pypi:ai-dynamo==1.6.1 -o surfaces-1.6.1.json\n"
            "  dynconform surfaces diff tests/fixtures/surfaces/ai-dynamo-1.6.1-cli.json "
            "pypi:ai-dynamo==1.6.1\n"
            "  dynconform surfaces history pypi:ai-dynamo==1.5.1 pypi:ai-dynamo==1.6.1"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ssub = p.add_subparsers(dest="surfaces_command", metavar="COMMAND")
    help_when_bare(p)
    snap = ssub.add_parser(
        "snapshot",
        help="write the surfaces of SOURCE as JSON",
        description="Write the CLI flags, env variables, metric names and families, and CRDs "
        "of SOURCE as a reviewable JSON snapshot. " + _SOURCES,
        epilog="examples:\n"
        "  dynconform surfaces snapshot pypi:ai-dynamo==1.6.1 -o surfaces-1.6.1.json\n"
        "  dynconform surfaces snapshot http://127.0.0.1:8000/metrics -o metrics.json\n"
        "  dynconform surfaces snapshot pypi:ai-dynamo==1.6.1 --component dynamo.frontend \\\n"
        "      --help-from ~/.cache/dynconform/venvs/ai-dynamo-1.6.1/bin/python\n"
        "  dynconform surfaces snapshot deploy/operator/config/crd/bases -o crds.json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    snap.add_argument("source", type=nonempty, help="what to snapshot")
    snap.add_argument(
        "-o", "--output", type=nonempty, metavar="FILE", help="output file (default: stdout)"
    )
    _add_load(snap)
    g = snap.add_argument_group("additions")
    g.add_argument(
        "--metrics-url",
        metavar="URL",
        help="also read the metric families (type, labels, help) a live /metrics exposes",
    )
    g.add_argument(
        "--help-from",
        type=nonempty,
        metavar="PYTHON",
        help="interpreter with the release installed: run 'PYTHON -m COMPONENT --help' for "
        "each component and add the options static reading misses (origin: help)",
    )
    g.add_argument(
        "--help-timeout",
        type=float,
        default=120.0,
        metavar="S",
        help="seconds one --help run may take (default: 120)",
    )
    g.add_argument(
        "--crd",
        action="append",
        default=[],
        type=nonempty,
        metavar="PATH",
        help="CRD YAML file or directory to add (repeatable)",
    )
    snap.set_defaults(func=cmd_snapshot)

    diff = ssub.add_parser(
        "diff",
        help="compare the surfaces of two sources; exit 1 on a policy violation",
        description="Compare OLD and NEW: flags removed, renamed or changed, env variables "
        "no longer read, metrics renamed or changed in type or labels, CRD versions and "
        "fields removed or narrowed, judged per tier (help tags [EXPERIMENTAL]/[BETA], "
        "DYN_EXPERIMENTAL_ prefix, CRD version names). " + _POLICY + " Exit 0 pass, "
        "1 violation, 2 usage error. " + _SOURCES,
        epilog="examples:\n"
        "  dynconform surfaces diff pypi:ai-dynamo==1.5.1 pypi:ai-dynamo==1.6.1\n"
        "  dynconform surfaces diff metrics-1.5.json http://127.0.0.1:8000/metrics\n"
        "  dynconform surfaces diff old-crds/ new-crds/ --deprecation crd:beta=1",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    diff.add_argument("old", type=nonempty, help="the released (baseline) surfaces")
    diff.add_argument("new", type=nonempty, help="the candidate surfaces")
    _add_load(diff)
    g = _add_policy(diff)
    g.add_argument("--additions", action="store_true", help="list additions too (text format)")
    diff.set_defaults(func=cmd_diff)

    hist = ssub.add_parser(
        "history",
        help="judge consecutive releases, counting deprecations from their first release",
        description="Compare each consecutive pair of SOURCES (oldest first) under the "
        "policy; a deprecation counts from the release where it first appeared, so a "
        "removal is allowed only once the kind's period has passed. " + _POLICY,
        epilog="example:\n"
        "  dynconform surfaces history pypi:ai-dynamo==1.4.0 pypi:ai-dynamo==1.5.1 "
        "pypi:ai-dynamo==1.6.1",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    hist.add_argument(
        "sources", nargs="+", type=nonempty, metavar="SOURCE", help="releases, oldest first"
    )
    _add_load(hist)
    _add_policy(hist)
    hist.set_defaults(func=cmd_history)


def parse_kind_periods(
    items: list[str],
) -> tuple[dict[Tier, int | None], dict[str, dict[Tier, int | None]]]:
    """``--deprecation [KIND:]TIER=N`` options: per-tier and per-kind periods."""
    tiers: list[str] = []
    kinds: dict[str, dict[Tier, int | None]] = {}
    for item in items:
        if "=" not in item:
            raise UsageError(f"--deprecation expects [KIND:]TIER=N, got {item!r}")
        head, colon, rest = item.partition(":")
        if not colon:
            tiers.append(item)
            continue
        if head not in SURFACE_PERIODS:
            known = ", ".join(SURFACE_PERIODS)
            raise UsageError(f"--deprecation {item!r}: unknown kind {head!r} (known: {known})")
        kinds.setdefault(head, {}).update(_tier_periods([rest]))
    return _tier_periods(tiers), kinds


def _options(args: argparse.Namespace) -> SurfaceOptions:
    return SurfaceOptions(
        package=args.package,
        components=tuple(args.component) or None,
        pip=PipOptions(args.index_url, (), args.no_index),
        repo=Path(args.repo) if args.repo else None,
        metrics_url=getattr(args, "metrics_url", None),
        help_from=getattr(args, "help_from", None),
        help_timeout=getattr(args, "help_timeout", 120.0),
        crd_paths=tuple(Path(p) for p in getattr(args, "crd", ())),
        progress=progress,
    )


def cmd_snapshot(args: argparse.Namespace) -> int:
    if args.help_timeout <= 0:
        raise UsageError("--help-timeout must be > 0")
    loaded = load_surfaces(args.source, _options(args))
    for problem in loaded.problems:
        print(f"dynconform: warning: {problem}", file=sys.stderr)
    snap = loaded.snapshot
    _emit(snap.to_json(), args.output)
    if args.output:
        s = snap.to_dict()["summary"]
        print(
            f"wrote {args.output}: {s['options']} flags in {s['components']} components, "
            f"{s['env']} env variables ({s['envRust']} read by compiled code), "
            f"{s['metrics']} metric names, {s['metricFamilies']} metric families, "
            f"{s['crds']} CRDs",
            file=sys.stderr,
        )
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    if args.max < 0:
        raise UsageError("--max must be >= 0")
    waivers = load_waivers(Path(args.waivers)) if args.waivers else []
    periods, kinds = parse_kind_periods(args.deprecation)
    report = compare_surfaces(
        args.old, args.new, _options(args), waivers=waivers, periods=periods, kind_periods=kinds
    )
    _emit(render(report, args.format, limit=args.max, additions=args.additions), args.output)
    return report.exit_code


def cmd_history(args: argparse.Namespace) -> int:
    if args.max < 0:
        raise UsageError("--max must be >= 0")
    if len(args.sources) < 2:
        raise UsageError("surfaces history needs at least two sources, oldest first")
    waivers = load_waivers(Path(args.waivers)) if args.waivers else []
    periods, kinds = parse_kind_periods(args.deprecation)
    report = history_surfaces(
        args.sources, _options(args), waivers=waivers, periods=periods, kind_periods=kinds
    )
    _emit(render_history(report, args.format, limit=args.max), args.output)
    return report.exit_code
