"""Helpers shared by the conformance tests."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any


def write_records(root: Path, records: list[dict[str, Any]]) -> None:
    """Write discovery records (``{"path", "value"}``) as a ``DYN_FILE_KV`` store at ``root``."""
    for record in records:
        path = root / record["path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record["value"]))


def processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes whose arguments mention ``text``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            raw = (proc / "cmdline").read_bytes()
            state = (proc / "stat").read_text().split(") ", 1)[1][0]
        except (OSError, IndexError):
            continue
        if state != "Z" and text.encode() in raw:
            found.append(raw.replace(b"\0", b" ").decode(errors="replace")[:200])
    return found


def assert_no_process_left(text: str, timeout: float = 10.0) -> None:
    """No process mentioning ``text`` (a run's directory) is alive within ``timeout``."""
    deadline = time.monotonic() + timeout
    while processes_mentioning(text) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_mentioning(text) == []
