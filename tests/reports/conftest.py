"""Fixtures of the report tests: one real reference run, and real ai-dynamo stability data."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from reports_helpers import PKGX, RUN_CHECKS, VIOLATION, Index, build_wheel

from dynconform.reports import ConformanceReport, StabilityReport, load_report
from dynconform.stability import LoadOptions, PipOptions

ROOT = Path(__file__).resolve().parents[2]
#: the published ai-dynamo 1.0.0 -> 1.6.1 stability report (``report stability`` output)
PUBLISHED = ROOT / "reports" / "ai-dynamo" / "stability-1.0.0-1.6.1.json"


def _alive(marker: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            raw = (proc / "cmdline").read_bytes()
            state = (proc / "stat").read_text().split(") ", 1)[1][0]
        except (OSError, IndexError):
            continue
        if state != "Z" and marker.encode() in raw:
            found.append(raw.replace(b"\0", b" ").decode(errors="replace")[:200])
    return found


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real ``dynconform run`` of the reference with one violation mode (seed 7)."""
    out = tmp_path_factory.mktemp("reference-run")
    argv = [sys.executable, "-m", "dynconform", "run", "--backend", "reference"]
    argv += ["--violate", VIOLATION, "--seed", "7", "--quiet", "--report-dir", str(out)]
    for check in RUN_CHECKS:
        argv += ["--check", check]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=240, check=False)
    deadline = time.monotonic() + 10
    while _alive(str(out)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _alive(str(out)) == [], "the run left processes behind"
    assert proc.returncode == 1, proc.stderr[-2000:]
    return out


@pytest.fixture(scope="session")
def run_report(run_dir: Path) -> ConformanceReport:
    report = load_report(run_dir / "report.json")
    assert isinstance(report, ConformanceReport)
    return report


@pytest.fixture(scope="session")
def published() -> StabilityReport:
    report = load_report(PUBLISHED)
    assert isinstance(report, StabilityReport)
    return report


@pytest.fixture(scope="session")
def pkgx_index(tmp_path_factory: pytest.TempPathFactory) -> Index:
    """A local package index with releases 1.0, 1.1 and 2.0 of ``pkgx``."""
    tmp = tmp_path_factory.mktemp("index")
    links = tmp / "wheels"
    for version, src in sorted(PKGX.items()):
        build_wheel(links, "pkgx", version, {"pkgx/__init__.py": src})
    options = LoadOptions(pip=PipOptions(find_links=(str(links),), no_index=True), jobs=1)
    return Index(options, links, tmp / "cache")
