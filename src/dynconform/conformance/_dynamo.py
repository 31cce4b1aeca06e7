"""Real Dynamo: ``python -m dynamo.frontend`` and a worker (``dynamo.mocker`` on CPU, or
``dynamo.vllm`` / ``dynamo.sglang`` / ``dynamo.trtllm`` on a GPU machine).

Topologies: ``file`` (file discovery in the run directory, TCP request plane, ZMQ events) and
``etcd-nats`` (real etcd and NATS from the pip wheels, NATS request and event planes).
Every process runs in its own process group and is stopped with it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from dynconform.conformance._errors import SutError
from dynconform.conformance._launch import (
    LOOPBACK,
    Plan,
    free_port,
    free_system_port,
    wait_for_model,
)
from dynconform.conformance._process import ManagedProcess, ProcessSpec
from dynconform.conformance._provision import provision_dynamo
from dynconform.conformance._reference import dynconform_command
from dynconform.conformance._session import RunConfig
from dynconform.conformance._sut import Sut, WorkerEndpoint
from dynconform.services import ServiceError, Services

__all__ = ["ENGINES", "DynamoLauncher"]

#: Engine modules and the option that names the model for each.
ENGINES = {
    "dynamo": ("dynamo.mocker", "--model-path"),
    "vllm": ("dynamo.vllm", "--model"),
    "sglang": ("dynamo.sglang", "--model-path"),
    "trtllm": ("dynamo.trtllm", "--model-path"),
}
MODEL_NAME = "tiny"
BLOCK_SIZE = 16
FEATURES = frozenset(
    {
        "discovery-tap",
        "event-plane-tap",
        "worker-system-server",
        "kv-events",
        "token-prompts",
        "ignore-eos",
        "process-control",
    }
)


class DynamoLauncher:
    """Starts a real Dynamo frontend and one worker."""

    def __init__(self, config: RunConfig, workdir: Path | None = None) -> None:
        self.config = config
        self.backend = config.backend
        self.topology = config.topology
        self.workdir = workdir or Path("<report-dir>/sut")
        self.python = config.sut_python or "python"
        self.model = config.model or MODEL_NAME
        self.ports = {"http": free_port(), "system": free_system_port()}
        self.services: Services | None = None
        self.processes: dict[str, ManagedProcess] = {}
        self.specs: dict[str, ProcessSpec] = {}
        self._log_dir = Path()
        self._urls = {"etcd": "http://127.0.0.1:<etcd-port>", "nats": "nats://127.0.0.1:<port>"}

    # -- what to start ------------------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        env = {"DYN_LOG": "info", "DYN_HTTP_HOST": LOOPBACK}
        if self.topology == "file":
            env["DYN_FILE_KV"] = str(self.workdir / "discovery")
        else:
            env["ETCD_ENDPOINTS"] = self._urls["etcd"]
            env["NATS_SERVER"] = self._urls["nats"]
        return env

    def _planes(self) -> list[str]:
        if self.topology == "file":
            return ["--discovery-backend", "file", "--request-plane", "tcp", "--event-plane", "zmq"]
        return ["--discovery-backend", "etcd", "--request-plane", "nats", "--event-plane", "nats"]

    def _model_path(self) -> Path:
        if self.config.model_path is not None:
            return self.config.model_path
        return self.workdir / "models" / MODEL_NAME

    def _specs(self) -> dict[str, ProcessSpec]:
        module, model_flag = ENGINES[self.backend]
        frontend = ProcessSpec(
            "frontend",
            (
                self.python, "-m", "dynamo.frontend",
                "--http-host", LOOPBACK,
                "--http-port", str(self.ports["http"]),
                "--router-mode", "kv",
                *self._planes(),
            ),
            env=self._env(),
            cwd=self.workdir,
        )  # fmt: skip
        worker_argv = [
            self.python, "-m", module,
            model_flag, str(self._model_path()),
            *self._planes(),
        ]  # fmt: skip
        if self.backend == "dynamo":
            worker_argv += [
                "--model-name", self.model,
                "--block-size", str(BLOCK_SIZE),
                "--speedup-ratio", "0",
            ]  # fmt: skip
        else:
            worker_argv += ["--served-model-name", self.model]
        worker = ProcessSpec(
            "worker-0",
            tuple(worker_argv),
            env={**self._env(), "DYN_SYSTEM_PORT": str(self.ports["system"])},
            cwd=self.workdir,
        )
        return {"worker-0": worker, "frontend": frontend}

    def plan(self) -> Plan:
        if self.config.sut_python is None and self.config.dynamo_version:
            self.python = f"<cache>/venvs/ai-dynamo-{self.config.dynamo_version}/bin/python"
        plan = Plan(self.backend, self.topology, list(self._specs().values()), dict(self.ports))
        if self.topology == "etcd-nats":
            plan.notes.append("etcd and nats-server start first on free loopback ports")
        if self.backend == "dynamo" and self.config.model_path is None:
            plan.notes.append(
                f"model dir built by: dynconform mocker build-model {self._model_path()}"
            )
        return plan

    # -- start --------------------------------------------------------------------------------

    def _resolve_python(self) -> None:
        if self.config.sut_python is not None:
            self.python = self.config.sut_python
        elif self.config.dynamo_version is not None:
            self.python = str(provision_dynamo(self.config.dynamo_version))
        else:
            raise SutError(
                f"--backend {self.backend} needs --dynamo-version VERSION or --sut-python PATH"
            )
        if shutil.which(self.python) is None and not (
            Path(self.python).is_file() and os.access(self.python, os.X_OK)
        ):
            raise SutError(f"no Python interpreter at {self.python} (not an executable file)")

    def _probe(self, module: str) -> None:
        """Fail fast, in one line, when the engine cannot even be imported."""
        done = subprocess.run(
            [self.python, "-c", f"import {module}.main"]
            if module != "dynamo.mocker"
            else [self.python, "-c", "import dynamo.mocker, dynamo.frontend"],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        if done.returncode != 0:
            lines = done.stderr.strip().splitlines()
            last = lines[-1] if lines else f"exit code {done.returncode}"
            if self.backend in ("vllm", "sglang", "trtllm"):
                raise SutError(
                    f"--backend {self.backend} needs a CUDA GPU machine with the {self.backend} "
                    f"engine installed in {self.python}: {last}"
                )
            raise SutError(f"{self.python} cannot import {module}: {last}")

    def _version(self) -> str:
        done = subprocess.run(
            [
                self.python,
                "-c",
                "from importlib.metadata import version; print(version('ai-dynamo'))",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        return done.stdout.strip() or "unknown"

    def _build_model(self) -> None:
        path = self._model_path()
        if self.config.model_path is not None or (path / "config.json").is_file():
            return
        done = subprocess.run(
            [*dynconform_command(), "mocker", "build-model", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise SutError(f"building the model dir failed: {done.stderr.strip()[-300:]}")

    def start(self, log_dir: Path, timeout: float) -> Sut:
        self._log_dir = log_dir
        self.workdir = self.workdir.resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._resolve_python()
        self._probe(ENGINES[self.backend][0])
        if self.backend == "dynamo":
            self._build_model()
        if self.topology == "etcd-nats":
            try:
                self.services = Services(etcd=True, nats=True, workdir=self.workdir / "services")
                self.services.start()
            except ServiceError as exc:
                raise SutError(str(exc)) from None
            self._urls = {"etcd": self.services.url("etcd"), "nats": self.services.url("nats")}
        self.specs = self._specs()
        for name, spec in self.specs.items():
            self.processes[name] = ManagedProcess(spec, log_dir)
        wait_for_model(
            f"http://{LOOPBACK}:{self.ports['http']}",
            self.model,
            timeout,
            list(self.processes.values()),
        )
        return self._sut()

    def _sut(self) -> Sut:
        file_topology = self.topology == "file"
        discovery = (
            f"file://{self.workdir / 'discovery'}?ttl=10"
            if file_topology
            else "etcd://" + self._urls["etcd"].split("://", 1)[-1]
        )
        event_plane = "zmq" if file_topology else self._urls["nats"]
        features = set(FEATURES)
        if not file_topology:
            features.add("request-plane-tap")
        if self.backend != "dynamo":
            features -= {"kv-events", "ignore-eos"}
        return Sut(
            name="ai-dynamo",
            version=self._version(),
            backend=self.backend,
            topology=self.topology,
            frontend_url=f"http://{LOOPBACK}:{self.ports['http']}",
            features=frozenset(features),
            model=self.model,
            workers=(WorkerEndpoint("worker-0", f"http://{LOOPBACK}:{self.ports['system']}"),),
            discovery=discovery,
            event_plane=event_plane,
            request_plane=None if file_topology else self._urls["nats"],
            control=self,
            details={
                "engine": ENGINES[self.backend][0],
                "python": self.python,
                "model": str(self._model_path()),
            },
            logs=tuple(p.log_path for p in self.processes.values()),
        )

    # -- fault injection ----------------------------------------------------------------------

    def kill_worker(self, index: int) -> None:
        self.processes[f"worker-{index}"].kill()

    def restart_worker(self, index: int) -> None:
        name = f"worker-{index}"
        self.processes[name].stop(self.config.timeouts.shutdown)
        self.processes[name] = ManagedProcess(self.specs[name], self._log_dir)

    def stop(self) -> None:
        for name in ("frontend", *sorted(n for n in self.processes if n != "frontend")):
            if name in self.processes:
                self.processes[name].stop(self.config.timeouts.shutdown)
        self.processes.clear()
        if self.services is not None:
            self.services.stop()
            self.services = None
