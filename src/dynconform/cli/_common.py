"""Argument parsing helpers shared by every command."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn


class UsageError(Exception):
    """A usage or input problem: printed as one line, exit code 2."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr with exit code 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message} (see --help)\n")
        sys.exit(2)


def fail(message: str) -> int:
    """Print a one-line error and return the usage exit code."""
    sys.stderr.write(f"dynconform: error: {message}\n")
    return 2
