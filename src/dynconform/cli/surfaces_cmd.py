"""``dynconform surfaces ...``: CLI flags, env variables and metric names under the policy."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from dynconform.cli._common import UsageError
from dynconform.cli.api_cmd import emit_text as _emit
from dynconform.cli.api_cmd import parse_periods as _periods
from dynconform.stability import (
    REPORT_FORMATS,
    PipOptions,
    SurfaceOptions,
    compare_surfaces,
    load_waivers,
    render,
    snapshot_surfaces,
)

_SOURCES = (
    "SOURCE is a directory, a wheel, a directory of wheels, pypi:NAME==VERSION, "
    "git:REF[:SUBDIR[,SUBDIR]] or a surface snapshot JSON written by 'surfaces snapshot'. "
    "Nothing is imported or run: flags come from the argparse calls in the code."
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
    g.add_argument("--repo", help="git repository for git: sources (default: current directory)")


def add_surfaces(sub: Any) -> None:
    """Add the ``surfaces`` command group to an argparse subparsers object."""
    p = sub.add_parser(
        "surfaces",
        help="snapshot and diff CLI flags, env variables and metric names",
        description="Governance of the non-Python surfaces of a Dynamo release. " + _SOURCES,
    )
    ssub = p.add_subparsers(dest="surfaces_command", metavar="COMMAND", required=True)
    snap = ssub.add_parser("snapshot", help="write the surfaces of SOURCE as JSON")
    snap.add_argument("source", help="what to snapshot")
    snap.add_argument("-o", "--output", metavar="FILE", help="output file (default: stdout)")
    _add_load(snap)
    snap.set_defaults(func=cmd_snapshot)

    diff = ssub.add_parser(
        "diff",
        help="compare the surfaces of two sources; exit 1 on a policy violation",
        description="Compare OLD and NEW: flags removed, renamed or changed, env variables "
        "no longer read, metrics renamed, judged per tier (help tags [EXPERIMENTAL]/[BETA], "
        "DYN_EXPERIMENTAL_ prefix). Exit 0 pass, 1 violation, 2 usage error. " + _SOURCES,
        epilog="example:\n  dynconform surfaces diff pypi:ai-dynamo==1.5.1 pypi:ai-dynamo==1.6.1",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    diff.add_argument("old", help="the released (baseline) surfaces")
    diff.add_argument("new", help="the candidate surfaces")
    _add_load(diff)
    g = diff.add_argument_group("policy and output")
    g.add_argument("--waivers", metavar="FILE", help="YAML file of waivers")
    g.add_argument(
        "--deprecation",
        action="append",
        default=[],
        metavar="TIER=N",
        help="releases a deprecation must precede a breaking change in TIER (N or 'none')",
    )
    g.add_argument("--format", choices=REPORT_FORMATS, default="text", help="output format")
    g.add_argument("-o", "--output", metavar="FILE", help="write the report to FILE")
    g.add_argument("--max", type=int, default=10, metavar="N", help="findings listed per kind")
    g.add_argument("--additions", action="store_true", help="list additions too (text format)")
    diff.set_defaults(func=cmd_diff)


def _options(args: argparse.Namespace) -> SurfaceOptions:
    return SurfaceOptions(
        package=args.package,
        components=tuple(args.component) or None,
        pip=PipOptions(args.index_url, (), args.no_index),
        repo=Path(args.repo) if args.repo else None,
    )


def cmd_snapshot(args: argparse.Namespace) -> int:
    snap = snapshot_surfaces(args.source, _options(args))
    _emit(snap.to_json(), args.output)
    if args.output:
        s = snap.to_dict()["summary"]
        print(
            f"wrote {args.output}: {s['options']} flags in {s['components']} components, "
            f"{s['env']} env variables, {s['metrics']} metric names",
            file=sys.stderr,
        )
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    if args.max < 0:
        raise UsageError("--max must be >= 0")
    waivers = load_waivers(Path(args.waivers)) if args.waivers else []
    report = compare_surfaces(
        args.old, args.new, _options(args), waivers=waivers, periods=_periods(args.deprecation)
    )
    _emit(render(report, args.format, limit=args.max, additions=args.additions), args.output)
    return report.exit_code
