"""Processes the runner starts: each in its own process group, with its log in a file.

Every :class:`ManagedProcess` is remembered until stopped, and stopped (group and all) at
interpreter exit at the latest, so a crash of the runner leaves nothing behind.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dynconform.services import kill_group, stop_group

__all__ = ["ManagedProcess", "ProcessSpec", "stop_all"]

#: processes started and not yet stopped, in start order
_LIVE: dict[int, ManagedProcess] = {}


@dataclass(frozen=True, slots=True)
class ProcessSpec:
    """What to start: a name (for logs), argv, extra environment and working directory."""

    name: str
    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None

    def describe(self) -> str:
        """A shell-like line: ``ENV=... argv...`` (for ``--dry-run`` and logs)."""
        env = " ".join(f"{k}={v}" for k, v in sorted(self.env.items()))
        return f"{env} {' '.join(self.argv)}".strip()


class ManagedProcess:
    """A started process in its own session and process group; stdout+stderr go to a log."""

    def __init__(self, spec: ProcessSpec, log_dir: Path) -> None:
        self.spec = spec
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"{spec.name}.log"
        env = dict(os.environ)
        env.update(spec.env)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                list(spec.argv),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=spec.cwd,
                env=env,
                start_new_session=True,
            )
        _LIVE[id(self)] = self

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole group at once (fault injection: no chance to deregister)."""
        kill_group(self.process)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the group, then SIGKILL what is left after ``timeout`` seconds."""
        stop_group(self.process, timeout)
        _LIVE.pop(id(self), None)

    def tail(self, lines: int = 5) -> str:
        """The last lines of the log, joined by `` | `` (for one-line error messages)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        kept = [line.strip() for line in text.strip().splitlines() if line.strip()]
        return " | ".join(kept[-lines:])[-600:]


def stop_all(timeout: float = 10.0) -> None:
    """Stop every live process, newest first."""
    deadline = time.monotonic() + timeout
    for proc in reversed(list(_LIVE.values())):
        proc.stop(max(0.5, deadline - time.monotonic()))


atexit.register(stop_all)
