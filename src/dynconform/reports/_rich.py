"""Terminal output with rich: colour on a terminal, plain text in pipes, CI logs and files.

Colour is used only when the output is a terminal and ``NO_COLOR`` is unset (or empty), as
https://no-color.org asks; ``color=True`` or ``False`` decides explicitly. Text from the
system under test is rendered as plain text: rich markup in it is not interpreted and
control characters (terminal escape sequences) are dropped.
"""

from __future__ import annotations

import os
import sys
from typing import TextIO

from dynconform.reports._io import Report, redacted

__all__ = ["print_terminal", "terminal", "use_color"]


def use_color(stream: TextIO | None = None) -> bool:
    """Whether to colour output to ``stream`` (default stdout): a TTY and no ``NO_COLOR``."""
    if os.environ.get("NO_COLOR"):
        return False
    stream = sys.stdout if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def terminal(
    report: Report,
    *,
    color: bool | None = None,
    width: int | None = None,
    all_checks: bool = False,
    limit: int = 20,
) -> str:
    """The report for a terminal: ANSI colours only when ``color`` (default: :func:`use_color`
    of stdout), at most ``limit`` items per list."""
    # rich loads here, on first use: importing the reports package stays light
    from dynconform.reports._console import render_terminal

    color = use_color() if color is None else color
    return render_terminal(
        redacted(report), color=color, width=width or 110, all_checks=all_checks, limit=limit
    )


def print_terminal(report: Report, file: TextIO | None = None, **options: bool | int) -> None:
    """Write :func:`terminal` to ``file`` (default stdout), coloured if that is a terminal."""
    stream = sys.stdout if file is None else file
    color = bool(options.pop("color", use_color(stream)))
    stream.write(terminal(report, color=color, **options))  # type: ignore[arg-type]
