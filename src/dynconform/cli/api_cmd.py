"""``dynconform api ...``: snapshots, diffs and tier-aware checks of a Python API."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from dynconform.cli._common import COMMANDS, UsageError, help_when_bare, nonempty, progress
from dynconform.stability import (
    KINDS,
    REPORT_FORMATS,
    Governance,
    LoadOptions,
    PipOptions,
    Tier,
    bundled_tiers,
    compare_apis,
    history_api,
    load_tiers,
    load_waivers,
    release_versions,
    render,
    render_history,
    select_versions,
    snapshot_api,
)

EXIT_OK, EXIT_FAIL = 0, 1

_SOURCES = (
    "SOURCE is a directory, a wheel, a directory of wheels, pypi:NAME==VERSION, "
    "git:REF[:SUBDIR[,SUBDIR]] or a snapshot JSON written by 'api snapshot'."
)


def _add_load(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("sources")
    g.add_argument("--package", help="top-level package to read (default: detected)")
    g.add_argument("--index-url", help="package index for pypi: sources (pip --index-url)")
    g.add_argument(
        "--find-links",
        action="append",
        default=[],
        type=nonempty,
        metavar="URL",
        help="extra wheel location for pypi: sources (repeatable)",
    )
    g.add_argument("--no-index", action="store_true", help="do not use any package index")
    g.add_argument(
        "--repo",
        type=nonempty,
        help="git repository for git: sources (default: current directory)",
    )
    g.add_argument("--no-cache", action="store_true", help="rebuild snapshots, ignore the cache")


def _add_tiers(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("tiers and policy")
    names = ", ".join(sorted(bundled_tiers())) or "none"
    g.add_argument(
        "--tiers",
        type=nonempty,
        metavar="FILE|NAME",
        help=f"tiers file, or a bundled one by name ({names}); default: the bundled file "
        "matching the distribution, else everything is stable",
    )
    g.add_argument(
        "--default-tier", choices=[t.value for t in Tier], help="tier of objects nothing names"
    )
    g.add_argument(
        "--deprecation",
        action="append",
        default=[],
        metavar="TIER=N",
        help="releases a deprecation must precede a breaking change in TIER "
        "(N or 'none'; default beta=1, stable=2)",
    )


def _add_report(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("policy and output")
    g.add_argument("--waivers", type=nonempty, metavar="FILE", help="YAML file of waivers")
    g.add_argument("--format", choices=REPORT_FORMATS, default="text", help="output format")
    g.add_argument("-o", "--output", type=nonempty, metavar="FILE", help="write the report to FILE")
    g.add_argument(
        "--max", type=int, default=10, metavar="N", help="findings listed per kind (default 10)"
    )
    g.add_argument("--additions", action="store_true", help="list additions too (text format)")


def add_api(sub: Any) -> None:
    """Add the ``api`` command group to an argparse subparsers object."""
    p = sub.add_parser(
        "api",
        help=COMMANDS["api"].summary,
        description=(
            "API governance for Python packages (Dynamo by default): static snapshots with "
            "griffe, diffs that include re-exported bindings and annotations, tiers "
            "(experimental, beta, stable) and deprecation periods. " + _SOURCES
        ),
        epilog=(
            "examples:\n"
            "  dynconform api check --baseline api/dynconform.json --tiers api/tiers.yaml "
            "src --package dynconform\n"
            "  dynconform api diff pypi:ai-dynamo==1.5.1 pypi:ai-dynamo==1.6.1\n"
            "  dynconform api kinds"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    asub = p.add_subparsers(dest="api_command", metavar="COMMAND")
    help_when_bare(p)

    snap = asub.add_parser(
        "snapshot",
        help="write the public API of SOURCE as a reviewable JSON baseline",
        description="Write the public API of SOURCE as sorted JSON. " + _SOURCES,
        epilog=(
            "examples:\n"
            "  dynconform api snapshot src --package dynconform --tiers api/tiers.yaml "
            "-o api.json\n"
            "  dynconform api snapshot pypi:ai-dynamo==1.6.1 -o ai-dynamo-1.6.1.json"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    snap.add_argument("source", type=nonempty, help="what to snapshot")
    snap.add_argument(
        "-o", "--output", type=nonempty, metavar="FILE", help="output file (default: stdout)"
    )
    _add_load(snap)
    _add_tiers(snap)
    snap.set_defaults(func=cmd_snapshot)

    diff = asub.add_parser(
        "diff",
        help="compare two APIs; exit 1 on a policy violation",
        description="Compare OLD and NEW under the tier policy. Exit 0 pass, 1 policy "
        "violation or expired waiver, 2 usage error. " + _SOURCES,
        epilog="example:\n  dynconform api diff pypi:ai-dynamo==1.5.1 pypi:ai-dynamo==1.6.1",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    diff.add_argument("old", type=nonempty, help="the released (baseline) API")
    diff.add_argument("new", type=nonempty, help="the candidate API")
    _add_load(diff)
    _add_tiers(diff)
    _add_report(diff)
    diff.set_defaults(func=cmd_diff)

    check = asub.add_parser(
        "check",
        help="check SOURCE against a committed baseline snapshot",
        description="Compare SOURCE with the --baseline snapshot under the tier policy. "
        "Exit 0 pass, 1 policy violation or expired waiver, 2 usage error.",
        epilog=(
            "examples:\n"
            "  dynconform api check --baseline api/dynconform.json --tiers api/tiers.yaml "
            "src --package dynconform\n"
            "  dynconform api check --baseline api/dynconform.json --tiers api/tiers.yaml "
            "src --package dynconform \\\n"
            "      --format markdown -o api-report.md"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument(
        "source", nargs="?", default=".", type=nonempty, help="the candidate (default: .)"
    )
    check.add_argument(
        "--baseline", required=True, type=nonempty, metavar="FILE", help="baseline snapshot"
    )
    _add_load(check)
    _add_tiers(check)
    _add_report(check)
    check.set_defaults(func=cmd_check)

    hist = asub.add_parser(
        "history",
        help="compare every consecutive pair of a project's PyPI releases",
        description="Walk the releases of PROJECT in order, compare each with the one before, "
        "and track when each deprecation first appeared, so deprecation periods are "
        "counted in releases.",
        epilog=(
            "examples:\n"
            "  dynconform api history ai-dynamo --from 1.5.0 --to 1.6.1\n"
            "  dynconform api history ai-dynamo --versions 1.5.1,1.6.1 --format markdown"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    hist.add_argument("project", help="PyPI project, e.g. ai-dynamo")
    hist.add_argument("--from", dest="start", metavar="VERSION", help="first release")
    hist.add_argument("--to", dest="end", metavar="VERSION", help="last release")
    hist.add_argument(
        "--versions", metavar="V1,V2,...", help="compare exactly these releases, in this order"
    )
    hist.add_argument("--pre", action="store_true", help="include pre-releases")
    hist.add_argument("--jobs", type=int, default=2, help="parallel snapshot builds (default 2)")
    _add_load(hist)
    _add_tiers(hist)
    _add_report(hist)
    hist.set_defaults(func=cmd_history)

    kinds = asub.add_parser(
        "kinds",
        help="list the change kinds and whether they break",
        description="List every change kind a diff reports, whether it breaks, and what it means.",
        epilog="examples:\n  dynconform api kinds\n  dynconform api kinds | grep breaking",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    kinds.set_defaults(func=cmd_kinds)


def _load_options(args: argparse.Namespace, jobs: int = 2) -> LoadOptions:
    pip = PipOptions(args.index_url, tuple(args.find_links), args.no_index)
    repo = Path(args.repo) if args.repo else None
    return LoadOptions(args.package, pip, repo, not args.no_cache, jobs, progress=progress)


def parse_periods(items: list[str]) -> dict[Tier, int | None]:
    """``--deprecation TIER=N|none`` options as deprecation periods in releases."""
    out: dict[Tier, int | None] = {}
    for item in items:
        name, eq, value = item.partition("=")
        if not eq:
            raise UsageError(f"--deprecation expects TIER=N, got {item!r}")
        tier = Tier.parse(name)
        if value.strip().lower() in ("none", "null", "-"):
            out[tier] = None
        elif value.strip().isdigit():
            out[tier] = int(value)
        else:
            raise UsageError(f"--deprecation {item!r}: N must be a number of releases or 'none'")
    return out


def _governance(args: argparse.Namespace) -> Governance:
    waivers = getattr(args, "waivers", None)
    return Governance(
        tiers=load_tiers(args.tiers) if args.tiers else None,
        default_tier=Tier(args.default_tier) if args.default_tier else None,
        periods=parse_periods(args.deprecation),
        waivers=tuple(load_waivers(Path(waivers))) if waivers else (),
    )


def emit_text(text: str, output: str | None) -> None:
    """Write ``text`` to ``output``, or to standard output when none is given."""
    if output:
        Path(output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


def cmd_snapshot(args: argparse.Namespace) -> int:
    snapshot = snapshot_api(args.source, _load_options(args), _governance(args))
    emit_text(snapshot.to_json(), args.output)
    if args.output:
        counts = ", ".join(f"{n} {t}" for t, n in snapshot.tier_counts().items() if n)
        print(f"wrote {args.output}: {len(snapshot)} objects ({counts})", file=sys.stderr)
    return EXIT_OK


def _check_max(args: argparse.Namespace) -> None:
    if args.max < 0:
        raise UsageError("--max must be >= 0")


def cmd_diff(args: argparse.Namespace) -> int:
    _check_max(args)
    report = compare_apis(args.old, args.new, _load_options(args), _governance(args))
    emit_text(render(report, args.format, limit=args.max, additions=args.additions), args.output)
    return report.exit_code


def cmd_check(args: argparse.Namespace) -> int:
    _check_max(args)
    if not Path(args.baseline).is_file():
        raise UsageError(f"--baseline {args.baseline}: no such file")
    report = compare_apis(args.baseline, args.source, _load_options(args), _governance(args))
    emit_text(render(report, args.format, limit=args.max, additions=args.additions), args.output)
    return report.exit_code


def cmd_history(args: argparse.Namespace) -> int:
    _check_max(args)
    if args.jobs < 1:
        raise UsageError("--jobs must be >= 1")
    options = _load_options(args, args.jobs)
    if args.versions:
        versions = [v.strip() for v in args.versions.split(",") if v.strip()]
    else:
        available = release_versions(args.project, options.pip)
        versions = select_versions(available, args.start, args.end, args.pre)
        for bound in (args.start, args.end):
            if bound and bound not in available:
                raise UsageError(f"{args.project} has no release {bound}")
    report = history_api(args.project, versions, options, _governance(args))
    emit_text(render_history(report, args.format, limit=args.max), args.output)
    return report.exit_code


def cmd_kinds(args: argparse.Namespace) -> int:
    width = max(len(k) for k in KINDS)
    for kind in KINDS.values():
        label = "breaking" if kind.breaking else "info"
        print(f"{kind.id:<{width}}  {label:<8}  {kind.summary}")
    return EXIT_OK
