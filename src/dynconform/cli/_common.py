"""Argument parsing helpers shared by every command."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NamedTuple, NoReturn


class UsageError(Exception):
    """A usage or input problem: printed as one line, exit code 2."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr with exit code 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message} (see --help)\n")
        sys.exit(2)


def nonempty(value: str) -> str:
    """An argparse ``type`` for a path (or a source such as ``pypi:NAME==V``) given as text:
    the value unchanged, but never the empty string, which ``Path`` would read as ``.``."""
    if not value:
        raise argparse.ArgumentTypeError("an empty string is not a path")
    return value


def path_arg(value: str) -> Path:
    """An argparse ``type`` like ``Path`` that rejects the empty string (not the cwd)."""
    return Path(nonempty(value))


def help_when_bare(parser: argparse.ArgumentParser) -> None:
    """Make a command group, run without a subcommand, print its help (the list of its
    subcommands) on stdout and exit 2, as ``dynconform`` alone does."""

    def bare(_args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    parser.set_defaults(func=bare)


def fail(message: str) -> int:
    """Print a one-line error and return the usage exit code."""
    sys.stderr.write(f"dynconform: error: {message}\n")
    return 2


class Command(NamedTuple):
    """A top-level command: the module that adds it, its adder function, its one-line help."""

    module: str
    adder: str
    summary: str


#: Every command, in --help order. ``main`` imports only the module of the command it runs and
#: lists the others from here; each module takes its help line from here too.
COMMANDS: dict[str, Command] = {
    "run": Command("run_cmd", "add_run", "run the conformance suite against a Dynamo deployment"),
    "checks": Command("run_cmd", "add_checks", "the conformance check catalogue"),
    "validate": Command("contracts_cmd", "add_validate", "validate a file against a contract"),
    "contracts": Command(
        "contracts_cmd", "add_contracts", "list, show, export and self-check the bundled contracts"
    ),
    "graph": Command(
        "graph_cmd",
        "add_graph",
        "validate a graph deployment config, or render it as a DynamoGraphDeployment",
    ),
    "mocker": Command(
        "mocker_cmd", "add_mocker", "run the reference implementation (frontend + mock workers)"
    ),
    "tap": Command(
        "tap_cmd",
        "add_tap",
        "validate every event of a capture with the contracts and all stream rules",
    ),
    "api": Command(
        "api_cmd", "add_api", "snapshot, diff and check a Python API with stability tiers"
    ),
    "surfaces": Command(
        "surfaces_cmd",
        "add_surfaces",
        "snapshot and diff CLI flags, env variables, metrics and CRDs",
    ),
    "report": Command(
        "report_cmd",
        "add_report",
        "render a saved report; build a release-to-release stability report",
    ),
}


def progress(line: str) -> None:
    """Say how long work is going, on stderr when it is a terminal (stdout keeps the
    command's output; logs and pipes get only results and errors)."""
    if sys.stderr.isatty():
        sys.stderr.write(f"dynconform: {line}\n")
        sys.stderr.flush()
