"""The reference backend: ``dynconform mocker serve`` started as a process.

The stack writes a ready file with its URLs once the frontend lists the model; everything the
checks need (worker system servers, discovery, event plane) comes from that file. Workers are
children of the stack, each in its own process group; for fault injection the stack kills a
worker's process group and starts it again with the command line it ran with, when asked
over its control endpoint (the ``control`` URL of the ready file).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from dynconform import __version__
from dynconform.conformance._errors import SutError
from dynconform.conformance._launch import Plan
from dynconform.conformance._process import ManagedProcess, ProcessSpec
from dynconform.conformance._sut import Sut, WorkerEndpoint

__all__ = ["REFERENCE_COMMAND_ENV", "ReferenceLauncher", "dynconform_command"]

#: Overrides the command that runs dynconform (default: this interpreter ``-m dynconform``).
REFERENCE_COMMAND_ENV = "DYNCONFORM_REFERENCE_COMMAND"

FEATURES = frozenset(
    {
        "discovery-tap",
        "event-plane-tap",
        "worker-system-server",
        "kv-events",
        "token-prompts",
        "ignore-eos",
        "process-control",
        "request-plane-tap",
    }
)


def dynconform_command() -> list[str]:
    """The argv prefix that runs ``dynconform``."""
    override = os.environ.get(REFERENCE_COMMAND_ENV)
    if override:
        return shlex.split(override)
    return [sys.executable, "-m", "dynconform"]


class ReferenceLauncher:
    """Starts the reference stack: file discovery + ZMQ, or etcd + NATS."""

    def __init__(
        self,
        *,
        topology: str = "file",
        violations: tuple[str, ...] = (),
        model: str | None = None,
        model_path: Path | None = None,
        block_size: int = 16,
        workdir: Path | None = None,
        shutdown: float = 10.0,
    ) -> None:
        if topology not in ("file", "etcd-nats"):
            raise SutError(f"unknown topology {topology!r} for the reference (file, etcd-nats)")
        self.topology = topology
        self.violations = violations
        self.model = model
        self.model_path = model_path
        self.block_size = block_size
        self.workdir = workdir
        #: seconds the stack has to exit after SIGTERM before it is killed
        self.shutdown = shutdown
        self.stack: ManagedProcess | None = None
        self.info: dict[str, Any] = {}
        #: seconds a restarted worker has to become ready
        self.restart_timeout = 120.0

    def _spec(self, workdir: Path) -> ProcessSpec:
        argv = [
            *dynconform_command(),
            "mocker", "serve",
            "--port", "0",
            "--speedup-ratio", "0",
            "--block-size", str(self.block_size),
            "--ready-file", str(workdir / "ready.json"),
            "--workdir", str(workdir / "stack"),
            "--record-requests",
        ]  # fmt: skip
        if self.topology == "etcd-nats":
            argv += ["--discovery", "etcd", "--event-plane", "nats"]
        if self.model:
            argv += ["--model-name", self.model]
        if self.model_path is not None:
            argv += ["--model-dir", str(self.model_path)]
        for mode in self.violations:
            argv += ["--violate", mode]
        return ProcessSpec("reference", tuple(argv), cwd=workdir)

    def plan(self) -> Plan:
        workdir = self.workdir or Path("<report-dir>/sut")
        plan = Plan("reference", self.topology, [self._spec(workdir)])
        plan.notes.append("ports: picked free on loopback by the stack (written to ready.json)")
        if self.topology == "etcd-nats":
            plan.notes.append("etcd and nats-server are started by the stack from the pip wheels")
        return plan

    def start(self, log_dir: Path, timeout: float) -> Sut:
        workdir = (self.workdir or log_dir / "sut").resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        ready = workdir / "ready.json"
        ready.unlink(missing_ok=True)
        shutil.rmtree(workdir / "stack", ignore_errors=True)  # left by an earlier run
        self.stack = ManagedProcess(self._spec(workdir), log_dir)
        deadline = time.monotonic() + timeout
        while not ready.is_file():
            if not self.stack.alive():
                raise SutError(
                    f"the reference exited at start (code {self.stack.process.returncode}): "
                    f"{self.stack.tail(2)}"
                )
            if time.monotonic() > deadline:
                raise SutError(f"the reference was not ready within {timeout:g} s")
            time.sleep(0.05)
        self.info = json.loads(ready.read_text())
        return self._sut(workdir)

    def _sut(self, workdir: Path) -> Sut:
        info = self.info
        discovery = info["discovery"]
        location = (
            f"file://{discovery['path']}?ttl=10"
            if discovery["backend"] == "file"
            else "etcd://" + discovery["url"].split("://", 1)[-1]
        )
        plane = info["event_plane"]
        event_plane = plane.get("url") if plane["transport"] == "nats" else "zmq"
        workers = tuple(
            WorkerEndpoint(f"worker-{i}", w.get("system_url"))
            for i, w in enumerate(info["workers"])
        )
        return Sut(
            name="dynconform-reference",
            version=__version__,
            backend="reference",
            topology=self.topology,
            frontend_url=info["frontend"]["url"],
            features=FEATURES,
            model=info.get("model"),
            workers=workers,
            discovery=location,
            event_plane=event_plane,
            control=self,
            details={
                "engine": "dynconform mocker",
                "violations": ",".join(info.get("violations", [])) or "none",
                "workdir": str(workdir),
            },
            logs=tuple(Path(w["log"]) for w in info["workers"] if w.get("log")),
            request_logs=tuple(Path(w["requests"]) for w in info["workers"] if w.get("requests")),
        )

    # -- fault injection -----------------------------------------------------------------------

    def _control(self, index: int, action: str) -> dict[str, Any]:
        """Ask the stack's control endpoint to ``kill`` or ``restart`` worker ``index``."""
        control = (self.info.get("control") or {}).get("url")
        if not control:
            raise SutError("the reference's ready file names no control endpoint")
        url = f"{control}/workers/{index}/{action}"
        request = urllib.request.Request(url, data=b"", method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.restart_timeout) as response:
                answer: dict[str, Any] = json.loads(response.read())
                return answer
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read()).get("message", "")
            except ValueError:
                message = ""
            raise SutError(f"{action} of worker {index} failed ({exc.code}): {message}") from None
        except (OSError, ValueError) as exc:
            raise SutError(f"{action} of worker {index}: {url}: {exc}") from None

    def kill_worker(self, index: int) -> None:
        self._control(index, "kill")

    def restart_worker(self, index: int) -> None:
        self.info["workers"][index] = self._control(index, "restart")

    def stop(self) -> None:
        if self.stack is not None:
            self.stack.stop(self.shutdown)
            self.stack = None
