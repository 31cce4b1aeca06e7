"""Test-only entry point: the dynconform CLI with the mocker, run and checks commands added.

Used as the reference command while the main CLI does not register them itself.
"""

from __future__ import annotations

import sys
from typing import Any

import dynconform.cli as cli
from dynconform.cli.mocker_cmd import add_mocker
from dynconform.cli.run_cmd import add_checks, add_run

_base = cli.build_parser


def build_parser() -> Any:
    parser = _base()
    sub = next(a for a in parser._actions if getattr(a, "dest", None) == "command")
    known = set(getattr(sub, "choices", {}) or {})
    for name, add in (("mocker", add_mocker), ("run", add_run), ("checks", add_checks)):
        if name not in known:
            add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    cli.build_parser = build_parser
    try:
        return cli.main(argv)
    finally:
        cli.build_parser = _base


if __name__ == "__main__":
    sys.exit(main())
