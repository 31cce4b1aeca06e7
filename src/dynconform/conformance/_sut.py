"""The system under test as checks see it: where to send requests and what to observe."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

__all__ = ["Sut", "WorkerControl", "WorkerEndpoint"]


class WorkerControl(Protocol):
    """Fault injection on workers the runner started."""

    def kill_worker(self, index: int) -> None:
        """SIGKILL worker ``index`` (its whole process group)."""
        ...

    def restart_worker(self, index: int) -> None:
        """Start worker ``index`` again after :meth:`kill_worker`; returns once it runs."""
        ...


@dataclass(frozen=True, slots=True)
class WorkerEndpoint:
    """A worker's system server (``/health``, ``/live``, ``/metrics``), when reachable."""

    name: str
    system_url: str | None = None


@dataclass
class Sut:
    """A running deployment: frontend, workers, and where its planes can be observed.

    ``discovery`` is ``file:///DIR`` or ``etcd://HOST:PORT``; ``event_plane`` is ``zmq``
    (endpoints from the discovery records), ``zmq://HOST:PORT,...`` or ``nats://HOST:PORT``;
    ``request_plane`` is a ``nats://`` URL when requests travel over NATS.
    """

    name: str
    version: str
    backend: str
    topology: str
    frontend_url: str
    features: frozenset[str]
    model: str | None = None
    workers: tuple[WorkerEndpoint, ...] = ()
    discovery: str | None = None
    event_plane: str | None = None
    request_plane: str | None = None
    namespace: str = "dynamo"
    control: WorkerControl | None = None
    details: Mapping[str, str] = field(default_factory=dict)
    logs: tuple[Path, ...] = ()
    #: files of request-plane frames the workers received, one JSON view per line
    request_logs: tuple[Path, ...] = ()
