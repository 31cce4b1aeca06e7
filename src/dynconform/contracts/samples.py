"""Real ai-dynamo captures bundled with dynconform, each paired with the contract it backs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from typing import Any

from dynconform.contracts._io import parse

__all__ = ["Sample", "iter_samples"]


@dataclass(frozen=True, slots=True)
class Sample:
    """One bundled capture file: its instances and the contract they must satisfy."""

    name: str
    contract: str
    instances: list[Any]
    stream: bool


def iter_samples(release: str = "ai-dynamo-1.6.1") -> Iterator[Sample]:
    """The bundled samples of ``release`` in manifest order."""
    root = resources.files("dynconform.contracts") / "samples" / release
    manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    for entry in manifest["samples"]:
        data = (root / entry["file"]).read_bytes()
        items, stream = parse(data, entry["format"], entry["file"])
        if entry.get("each") and len(items) == 1 and isinstance(items[0], list):
            items, stream = items[0], True
        yield Sample(entry["name"], entry["contract"], items, stream)
