from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from stability_helpers import Files, write_tree

from dynconform.stability import Finding, Snapshot, TierConfig, build_snapshot, diff_snapshots


@pytest.fixture(autouse=True)
def _hermetic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Own cache per test; pip ignores the machine's config and indexes."""
    monkeypatch.setenv("DYNCONFORM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    for var in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def snap(tmp_path: Path) -> Callable[..., Snapshot]:
    """Snapshot of a package written from ``{path: source}``."""
    counter = iter(range(1000))

    def make(files: Files, package: str = "pkg", config: TierConfig | None = None) -> Snapshot:
        root = tmp_path / f"tree{next(counter)}"
        write_tree(root, files)
        return (config or TierConfig()).resolve(build_snapshot(package, [root]))

    return make


@pytest.fixture
def changes(snap: Callable[..., Snapshot]) -> Callable[..., list[Finding]]:
    """Findings between two versions of a package (a string is ``pkg/__init__.py``)."""

    def files(src: str | Files) -> Files:
        return {"pkg/__init__.py": src} if isinstance(src, str) else src

    def run(old: str | Files, new: str | Files, config: TierConfig | None = None) -> list[Finding]:
        return diff_snapshots(snap(files(old), config=config), snap(files(new), config=config))

    return run
