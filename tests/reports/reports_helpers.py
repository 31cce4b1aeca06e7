"""Helpers of the report tests: Markdown tables, the reference run, a fixture package."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dynconform.stability import LoadOptions


def table_rows(markdown: str, header: str) -> list[list[str]]:
    """The cells of the Markdown table whose header row starts with ``header``; a ``|`` is a
    cell separator unless backslash-escaped, as GitHub reads tables."""
    lines = markdown.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith(header))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells, cell, escaped = [], "", False
        for ch in line.strip()[1:-1]:
            if ch == "|" and not escaped:
                cells.append(cell.strip())
                cell = ""
            else:
                cell += ch
            escaped = ch == "\\" and not escaped
        cells.append(cell.strip())
        rows.append(cells)
    return rows


#: checks of the reference run: one fails under the violation mode, the others pass
RUN_CHECKS = (
    "http.usage.totals",
    "http.stream.done-terminator",
    "http.chat.valid",
    "discovery.worker-registered",
)
VIOLATION = "http.usage-totals"


#: three releases of a fixture package: an addition, then removals (one deprecated long
#: enough before, one waived, one not), a changed default and new deprecations
PKGX = {
    "1.0": """
from typing_extensions import deprecated

def keep(a: int, b: int = 1) -> None: ...
def gone() -> None: ...
def waived() -> None: ...
@deprecated("use keep")
def old_api() -> None: ...
""",
    "2.0": """
from typing_extensions import deprecated

def keep(a: int, b: int = 2, c: int = 0) -> None: ...
def extra() -> None: ...
@deprecated("use keep")
def fresh() -> None: ...
""",
}
PKGX["1.1"] = PKGX["1.0"] + "def extra() -> None: ...\n"


@dataclass(frozen=True)
class Index:
    """A local package index and the cache its snapshots go to."""

    options: LoadOptions
    links: Path
    cache: Path

    @contextlib.contextmanager
    def hermetic(self) -> Iterator[None]:
        """While inside: the private cache, and pip blind to the machine's configuration."""
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("DYNCONFORM_CACHE", str(self.cache))
            patch.setenv("PIP_CONFIG_FILE", "/dev/null")
            for var in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS"):
                patch.delenv(var, raising=False)
            yield
