"""Helpers for the stability tests: fixture packages and wheels written in tmp_path."""

from __future__ import annotations

import textwrap
import zipfile
from collections.abc import Mapping
from pathlib import Path

from dynconform.stability import Finding

Files = Mapping[str, str]


def write_tree(root: Path, files: Files) -> Path:
    """Write ``{relative path: source}`` under ``root`` (sources are dedented)."""
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return root


def kinds(findings: list[Finding]) -> set[tuple[str, str]]:
    return {(f.kind, f.display_path) for f in findings}


def build_wheel(
    dest: Path,
    name: str,
    version: str,
    files: Files,
    requires: tuple[str, ...] = (),
) -> Path:
    """A minimal valid wheel written with zipfile."""
    dist = name.replace("-", "_")
    path = dest / f"{dist}-{version}-py3-none-any.whl"
    dest.mkdir(parents=True, exist_ok=True)
    meta = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    meta += [f"Requires-Dist: {r}" for r in requires]
    with zipfile.ZipFile(path, "w") as zf:
        for rel, text in files.items():
            zf.writestr(rel, textwrap.dedent(text).lstrip("\n"))
        info = f"{dist}-{version}.dist-info"
        zf.writestr(f"{info}/METADATA", "\n".join(meta) + "\n")
        zf.writestr(
            f"{info}/WHEEL",
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        zf.writestr(f"{info}/RECORD", "")
    return path
