"""``dynconform contracts compat``: JSON Schema compatibility between contract versions."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from dynconform.cli._common import UsageError, nonempty
from dynconform.stability import (
    COMPAT_MODES,
    REPORT_FORMATS,
    compare_contracts,
    load_waivers,
    render,
)


def register_compat(csub: Any) -> None:
    """Add ``compat`` to the ``contracts`` subparsers object."""
    p = csub.add_parser(
        "compat",
        help="check JSON Schema compatibility between contract versions",
        description=(
            "Check that the newest schema set reads (backward), is read by (forward), or both "
            "(full) the earlier ones, with Confluent Schema Registry's rules for JSON Schema; "
            "'-transitive' modes check against every earlier set, the others against the "
            "previous one. Each set is a schema file, a directory of schemas (matched by "
            "x-dynconform name or $id) or 'builtin' (the bundled contracts). A contract whose "
            "major version changed may break. Exit 0 compatible, 1 incompatible, 2 usage error."
        ),
        epilog=(
            "examples:\n"
            "  dynconform contracts compat old.json new.json --mode full\n"
            "  dynconform contracts compat baseline/ builtin --mode backward"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "old", nargs="+", type=nonempty, metavar="OLD", help="earlier schema sets, oldest first"
    )
    p.add_argument("new", type=nonempty, metavar="NEW", help="the newest schema set")
    p.add_argument("--mode", choices=COMPAT_MODES, default="backward", help="compatibility mode")
    p.add_argument("--waivers", type=nonempty, metavar="FILE", help="YAML file of waivers")
    p.add_argument("--format", choices=REPORT_FORMATS, default="text", help="output format")
    p.add_argument("-o", "--output", type=nonempty, metavar="FILE", help="write the report to FILE")
    p.add_argument(
        "--max", type=int, default=20, metavar="N", help="findings listed per kind (default 20)"
    )
    p.set_defaults(func=cmd_compat)


def cmd_compat(args: argparse.Namespace) -> int:
    if args.max < 0:
        raise UsageError("--max must be >= 0")
    waivers = load_waivers(Path(args.waivers)) if args.waivers else []
    report = compare_contracts([*args.old, args.new], args.mode, waivers=waivers)
    text = render(report, args.format, limit=args.max, additions=True)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return report.exit_code
