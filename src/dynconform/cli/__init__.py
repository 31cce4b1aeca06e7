"""The ``dynconform`` command line: thin wrappers that call one library function each."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from dynconform import __version__
from dynconform.cli._common import Parser, UsageError, fail
from dynconform.cli.api_cmd import add_api
from dynconform.cli.contracts_cmd import add_contracts, add_validate
from dynconform.cli.mocker_cmd import add_mocker
from dynconform.cli.run_cmd import add_checks, add_run
from dynconform.cli.surfaces_cmd import add_surfaces
from dynconform.cli.tap_cmd import add_tap
from dynconform.contracts import InputError, UnknownContractError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="dynconform",
        description=(
            "Contracts, conformance suite and API governance for NVIDIA Dynamo. "
            "Start with 'dynconform contracts list' or 'dynconform validate --help'."
        ),
    )
    parser.add_argument("--version", action="version", version=f"dynconform {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    add_run(sub)
    add_checks(sub)
    add_validate(sub)
    add_contracts(sub)
    add_mocker(sub)
    add_tap(sub)
    add_api(sub)
    add_surfaces(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (0 ok, 1 failed check, 2 usage error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        code: int = args.func(args)
    except UnknownContractError as exc:
        return fail(str(exc.args[0]))
    except (InputError, UsageError) as exc:
        return fail(str(exc))
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): stop quietly, as other Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as exc:
        target = f"{exc.filename}: " if exc.filename else ""
        return fail(f"{target}{exc.strerror or exc}")
    except KeyboardInterrupt:
        sys.stderr.write("dynconform: interrupted\n")
        return 130
    return code
