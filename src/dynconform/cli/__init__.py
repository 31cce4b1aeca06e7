"""The ``dynconform`` command line: thin wrappers that call one library function each."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from dynconform import __version__
from dynconform.cli._common import COMMANDS, Parser, UsageError, fail

__all__ = ["build_parser", "main"]


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole parser; with ``command``, one where only that command is complete and the
    others are only listed (what :func:`main` uses)."""
    parser = Parser(
        prog="dynconform",
        description=(
            "Contracts, conformance suite and API governance for NVIDIA Dynamo. "
            "Start with 'dynconform contracts list' or 'dynconform validate --help'."
        ),
        epilog=(
            "examples:\n"
            "  dynconform run                  # the conformance suite against the reference\n"
            "  dynconform checks list --profile core\n"
            "  dynconform contracts verify\n"
            "  dynconform mocker serve --workers 2 --speedup-ratio 0\n"
            "  dynconform api check --baseline api/dynconform.json --tiers api/tiers.yaml "
            "src --package dynconform"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"dynconform {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name, (module, adder, summary) in COMMANDS.items():
        if command is None or command == name:
            getattr(importlib.import_module(f"dynconform.cli.{module}"), adder)(sub)
        else:
            sub.add_parser(name, help=summary)
    return parser


def _command(argv: Sequence[str]) -> str:
    """The command named on the command line, or "" when there is none (help, --version)."""
    first = next((arg for arg in argv if not arg.startswith("-")), "")
    return first if first in COMMANDS else ""


def _error_line(exc: Exception) -> str | None:
    """The one-line message for an error the user can fix, or None for a bug."""
    # The contracts package is imported only by commands that use it: an exception of its
    # kinds can only come from there.
    contracts = sys.modules.get("dynconform.contracts")
    if contracts is not None and isinstance(exc, contracts.UnknownContractError):
        return str(exc.args[0])
    if contracts is not None and isinstance(exc, contracts.InputError):
        return str(exc)
    if isinstance(exc, OSError):
        target = f"{exc.filename}: " if exc.filename else ""
        return f"{target}{exc.strerror or exc}"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (0 ok, 1 failed check, 2 usage error,
    130 interrupted)."""
    try:
        return _run(list(sys.argv[1:] if argv is None else argv))
    except KeyboardInterrupt:
        # Anywhere: while the parser is built, the command's modules load, or it runs.
        sys.stderr.write("dynconform: interrupted\n")
        return 130


def _run(args_list: list[str]) -> int:
    parser = build_parser(_command(args_list))
    args = parser.parse_args(args_list)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        code: int = args.func(args)
    except UsageError as exc:
        return fail(str(exc))
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): stop quietly, as other Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as exc:
        line = _error_line(exc)
        if line is None:
            raise
        return fail(line)
    return code
