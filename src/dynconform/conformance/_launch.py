"""Launchers: start (or attach to) a system under test and describe it as a :class:`Sut`."""

from __future__ import annotations

import json
import random
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from dynconform.conformance._errors import SutError
from dynconform.conformance._process import ManagedProcess, ProcessSpec
from dynconform.conformance._sut import Sut
from dynconform.services import LOOPBACK, free_port

__all__ = [
    "LOOPBACK",
    "Launcher",
    "Plan",
    "free_port",
    "free_system_port",
    "wait_for_model",
]


@dataclass
class Plan:
    """What a launcher would start: processes, ports and environment (``--dry-run``)."""

    backend: str
    topology: str
    processes: list[ProcessSpec] = field(default_factory=list)
    ports: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"backend {self.backend}, topology {self.topology}"]
        for name, port in sorted(self.ports.items()):
            out.append(f"port    {name}: {port}")
        for spec in self.processes:
            out.append(f"process {spec.name}: {spec.describe()}")
        out += [f"note    {note}" for note in self.notes]
        return out


class Launcher(Protocol):
    """Starts a system under test; :meth:`stop` stops everything :meth:`start` started."""

    def plan(self) -> Plan: ...

    def start(self, log_dir: Path, timeout: float) -> Sut: ...

    def stop(self) -> None: ...


def free_system_port(host: str = LOOPBACK) -> int:
    """A free port below 32768: ai-dynamo 1.6.1 parses DYN_SYSTEM_PORT as a signed 16-bit
    integer and exits at start for larger ones."""
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(10_000, 32_768)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return port
    raise SutError("no free port below 32768 on loopback")


def _listed(url: str, model: str | None) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/v1/models", timeout=2) as response:
            data = json.loads(response.read())
    except (OSError, ValueError, urllib.error.URLError):
        return False
    ids = [m.get("id") for m in data.get("data", []) if isinstance(m, dict)]
    return bool(ids) and (model is None or model in ids)


def wait_for_model(
    url: str, model: str | None, timeout: float, processes: list[ManagedProcess]
) -> None:
    """Wait until ``url``/v1/models lists ``model`` (any model when ``None``).

    Raises :class:`SutError` when a process exits first or the time is up.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in processes:
            if not proc.alive():
                raise SutError(
                    f"{proc.spec.name} exited at start (code {proc.process.returncode}): "
                    f"{proc.tail(3)}"
                )
        if _listed(url, model):
            return
        time.sleep(0.2)
    what = f"model {model!r}" if model else "a model"
    raise SutError(f"{url}/v1/models did not list {what} within {timeout:g} s")
