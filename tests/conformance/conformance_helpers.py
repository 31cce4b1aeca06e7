"""Helpers shared by the conformance tests."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


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
