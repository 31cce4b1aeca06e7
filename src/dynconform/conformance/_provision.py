"""Provision an isolated virtualenv with a released ai-dynamo for CPU-only runs.

``ai-dynamo`` and ``ai-dynamo-runtime`` are installed with ``--no-deps``, then their
requirements from the wheels' METADATA: without extras, without ``aisimulate`` (a placeholder
that only installs from NVIDIA's own index) and with ``certifi`` unpinned. The environment
lives in the user cache (``$DYNCONFORM_CACHE``, default ``~/.cache/dynconform``) and is reused.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from dynconform.conformance._errors import SutError

__all__ = ["cache_dir", "filter_requirements", "provision_dynamo"]

_PACKAGES = ("ai-dynamo", "ai-dynamo-runtime")
_SKIP = {"aisimulate", "ai-dynamo", "ai-dynamo-runtime"}
_UNPIN = {"certifi"}
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_VERSION = re.compile(r"^[0-9][0-9A-Za-z.+!-]*$")

# Run inside the new environment: the requirements of both wheels whose markers hold there.
_LIST_REQUIREMENTS = """
import json, sys
from importlib import metadata
from pip._vendor.packaging.requirements import Requirement
out = []
for dist in sys.argv[1:]:
    for text in metadata.requires(dist) or []:
        req = Requirement(text)
        if req.marker is None or req.marker.evaluate({"extra": ""}):
            out.append(text.split(";")[0].strip())
print(json.dumps(out))
"""


def cache_dir() -> Path:
    return Path(os.environ.get("DYNCONFORM_CACHE") or Path.home() / ".cache" / "dynconform")


def filter_requirements(requirements: list[str]) -> list[str]:
    """Drop the wheels themselves and ``aisimulate``; unpin ``certifi``; de-duplicate."""
    out: list[str] = []
    for text in requirements:
        match = _NAME.match(text)
        if match is None:
            continue
        name = match.group(1).lower().replace("_", "-")
        if name in _SKIP:
            continue
        item = name if name in _UNPIN else text
        if item not in out:
            out.append(item)
    return out


def _run(argv: list[str], what: str, log: Path) -> str:
    with log.open("a", encoding="utf-8") as out:
        out.write(f"$ {' '.join(argv)}\n")
        out.flush()
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        out.write(done.stdout + done.stderr)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()
        raise SutError(f"{what} failed: {tail[-1] if tail else done.returncode} (log: {log})")
    return done.stdout


def provision_dynamo(version: str, say: Callable[[str], None] | None = None) -> Path:
    """The Python interpreter of a virtualenv with ai-dynamo ``version`` (created if needed)."""
    if not _VERSION.match(version):
        raise SutError(f"not a version: {version!r}")
    root = cache_dir() / "venvs" / f"ai-dynamo-{version}"
    python = root / "bin" / "python"
    stamp = root / ".provisioned"
    if stamp.is_file() and python.is_file():
        return python
    root.parent.mkdir(parents=True, exist_ok=True)
    log = root.parent / f"ai-dynamo-{version}.log"
    if say is not None:
        say(f"provisioning ai-dynamo {version} in {root} (log: {log})")
    if not python.is_file():
        _run([sys.executable, "-m", "venv", str(root)], "creating the virtualenv", log)
    pip = [str(python), "-m", "pip", "--disable-pip-version-check", "install", "--quiet"]
    wheels = [f"{name}=={version}" for name in _PACKAGES]
    _run([*pip, "--no-deps", *wheels], f"pip install --no-deps {' '.join(wheels)}", log)
    listed = _run(
        [str(python), "-c", _LIST_REQUIREMENTS, *_PACKAGES], "reading the wheels' METADATA", log
    )
    requirements = filter_requirements(json.loads(listed))
    if requirements:
        _run([*pip, *requirements], "installing the requirements of ai-dynamo", log)
    stamp.write_text(json.dumps({"version": version, "requirements": requirements}) + "\n")
    return python
