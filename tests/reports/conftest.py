"""Fixtures of the report tests: one real reference run, and real ai-dynamo stability data."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from reports_helpers import PKGX, RUN_CHECKS, VIOLATION, Index

from conformance.conformance_helpers import assert_no_process_left
from dynconform.reports import ConformanceReport, StabilityReport, load_report
from dynconform.stability import LoadOptions, PipOptions
from stability.stability_helpers import build_wheel

ROOT = Path(__file__).resolve().parents[2]
#: the published ai-dynamo 1.0.0 -> 1.6.1 stability report (``report stability`` output)
PUBLISHED = ROOT / "reports" / "ai-dynamo" / "stability-1.0.0-1.6.1.json"


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real ``dynconform run`` of the reference with one violation mode (seed 7)."""
    out = tmp_path_factory.mktemp("reference-run")
    argv = [sys.executable, "-m", "dynconform", "run", "--backend", "reference"]
    argv += ["--violate", VIOLATION, "--seed", "7", "--quiet", "--report-dir", str(out)]
    for check in RUN_CHECKS:
        argv += ["--check", check]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=240, check=False)
    assert_no_process_left(str(out))
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
