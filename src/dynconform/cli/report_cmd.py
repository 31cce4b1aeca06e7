"""``dynconform report ...``: render a saved report, or build a release stability report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from dynconform.cli._common import COMMANDS, UsageError, help_when_bare, nonempty
from dynconform.cli.api_cmd import _add_load, _add_tiers, _governance, _load_options
from dynconform.reports import RENDER_FORMATS, Report, load_report, render
from dynconform.stability import stability_history

EXIT_OK, EXIT_FAIL = 0, 1


def add_report(sub: Any) -> None:
    """Add the ``report`` command group to an argparse subparsers object."""
    p = sub.add_parser(
        "report",
        help=COMMANDS["report"].summary,
        description="Reports are versioned documents (apiVersion dynconform.dev/v1alpha1) of "
        "kind ConformanceReport (written by 'dynconform run'), StabilityReport (written by "
        "'report stability') or TapReport. Every output has secrets redacted.",
        epilog="examples:\n"
        "  dynconform run --report-dir out && dynconform report render out/report.json\n"
        "  dynconform report render out/report.yaml --format html -o out/report.html\n"
        "  dynconform report stability ai-dynamo --from 1.5.1 --to 1.6.1",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    rsub = p.add_subparsers(dest="report_command", metavar="COMMAND")
    help_when_bare(p)

    show = rsub.add_parser(
        "render",
        help="write a saved report as terminal text, Markdown, JSON, YAML, JUnit, GitHub "
        "annotations or HTML",
        description="Read REPORT (JSON or YAML, any kind) and write it in another format. "
        "Exit 0 written (with --strict: and the report passed), 1 the report failed "
        "(--strict only), 2 unreadable input.",
        epilog="examples:\n"
        "  dynconform report render out/report.json\n"
        "  dynconform report render out/report.yaml --format markdown >> $GITHUB_STEP_SUMMARY\n"
        "  dynconform report render out/report.json --format github --strict\n"
        "  dynconform report render out/report.json --format html -o out/report.html\n"
        "\nterminal output is coloured only on a terminal and without NO_COLOR.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    show.add_argument("report", type=nonempty, help="a report file (.json, .yaml)")
    show.add_argument(
        "--format", choices=RENDER_FORMATS, default="terminal", help="default: terminal"
    )
    show.add_argument(
        "-o", "--output", type=nonempty, metavar="FILE", help="write to FILE (default: stdout)"
    )
    show.add_argument(
        "--strict", action="store_true", help="exit 1 when the report's verdict is a failure"
    )
    show.set_defaults(func=cmd_render)

    stab = rsub.add_parser(
        "stability",
        help="the API (and surface) changes of a PyPI project between two releases",
        description="Compare every consecutive pair of PACKAGE's releases from --from to --to "
        "(pre-releases left out unless --pre) under the tier policy, and write a "
        "StabilityReport: per release step, what was added, deprecated, removed or broken in "
        "each tier, the policy verdict and the waivers used. Wheels are downloaded with pip, "
        "never imported; snapshots are cached under $DYNCONFORM_CACHE. "
        "Exit 0 no policy violation, 1 violations or expired waivers, 2 usage error.",
        epilog="examples:\n"
        "  dynconform report stability ai-dynamo --from 1.5.1 --to 1.6.1\n"
        "  dynconform report stability ai-dynamo --from 1.0.0 --to 1.6.1 \\\n"
        "      --format markdown -o stability.md\n"
        "  dynconform report stability ai-dynamo --from 1.5.0 --to 1.6.1 --surfaces \\\n"
        "      --format html -o stability.html",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    stab.add_argument("project", metavar="PACKAGE", help="PyPI project, e.g. ai-dynamo")
    stab.add_argument("--from", dest="start", required=True, metavar="VERSION")
    stab.add_argument("--to", dest="end", required=True, metavar="VERSION")
    stab.add_argument("--pre", action="store_true", help="include pre-releases in between")
    stab.add_argument(
        "--surfaces",
        action="store_true",
        help="compare CLI flags, env variables and metric names too (slower)",
    )
    stab.add_argument("--jobs", type=int, default=2, help="parallel snapshot builds (default 2)")
    stab.add_argument("--waivers", type=nonempty, metavar="FILE", help="YAML file of waivers")
    stab.add_argument(
        "--format", choices=RENDER_FORMATS, default="terminal", help="default: terminal"
    )
    stab.add_argument(
        "-o", "--output", type=nonempty, metavar="FILE", help="write to FILE (default: stdout)"
    )
    _add_load(stab)
    _add_tiers(stab)
    stab.set_defaults(func=cmd_stability)


def _write(text: str, output: str | None, what: str) -> None:
    if output:
        path = Path(output)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path} ({what})", file=sys.stderr)
    else:
        sys.stdout.write(text)


def _color(output: str | None) -> bool | None:
    """Never colour a file; decide by the terminal (and NO_COLOR) otherwise."""
    return False if output else None


def render_report(report: Report, fmt: str, output: str | None = None) -> str:
    """``report`` in ``fmt`` as ``report render`` writes it (no colour into files)."""
    return render(report, fmt, color=_color(output))


def cmd_render(args: argparse.Namespace) -> int:
    path = Path(args.report)
    if path.is_dir():
        raise UsageError(f"{path}: is a directory, not a report file")
    if not path.is_file():
        raise UsageError(f"{path}: no such report file")
    report = load_report(path)
    _write(render_report(report, args.format, args.output), args.output, args.format)
    return EXIT_FAIL if args.strict and not report.passed else EXIT_OK


def cmd_stability(args: argparse.Namespace) -> int:
    if args.jobs < 1:
        raise UsageError("--jobs must be >= 1")
    report = stability_history(
        args.project,
        args.start,
        args.end,
        options=_load_options(args, args.jobs),
        governance=_governance(args),
        surfaces=args.surfaces,
        pre=args.pre,
    )
    summary = (
        f"{args.format}, {len(report.steps)} release steps, "
        f"{len(report.violations)} policy violations"
    )
    _write(render_report(report, args.format, args.output), args.output, summary)
    return EXIT_OK if report.passed else EXIT_FAIL
