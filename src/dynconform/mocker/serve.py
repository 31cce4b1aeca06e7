"""``dynconform mocker serve``: a frontend and N mock workers on loopback, as processes.

The default topology needs no server: file discovery in a temporary directory and ZMQ events.
``discovery="etcd"`` and ``event_plane="nats"`` start real etcd / NATS servers (from the pip
wheels) unless URLs of running ones are given. Every child runs in its own process group and
is stopped, group and all, when the stack stops. The stack supervises its workers: a worker
can be killed and restarted with the command line it was started with, from Python or over
the control endpoint (:mod:`dynconform.mocker.control`, URL in ``info["control"]``)::

    with MockerStack(ServeOptions(workers=2, speedup_ratio=0)) as stack:
        print(stack.info["frontend"]["url"])
        stack.kill_worker(0)
        stack.restart_worker(0)
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from dynconform.mocker.control import ControlError, ControlServer
from dynconform.mocker.faults import check_faults
from dynconform.mocker.model_dir import ModelDirError, build_model_dir, load_model_dir
from dynconform.mocker.violations import VIOLATIONS, UnknownViolationError, check_modes
from dynconform.services import (
    LOOPBACK,
    Lifecycle,
    ServiceError,
    Services,
    check_reachable,
    is_server_url,
    kill_group,
    stop_group,
)

__all__ = ["MockerStack", "ServeError", "ServeInterrupted", "ServeOptions", "serve"]


class ServeError(RuntimeError):
    """The stack cannot start; the message is one line (exit code 2)."""


class ServeInterrupted(ServeError):
    """A stop was requested (a signal, or the ``stop`` event) while the stack was starting;
    everything already started has been stopped."""


@dataclass
class ServeOptions:
    """What ``dynconform mocker serve`` starts."""

    workers: int = 1
    discovery: Literal["file", "etcd"] = "file"
    event_plane: Literal["zmq", "nats"] = "zmq"
    etcd_url: str | None = None
    nats_url: str | None = None
    model_dir: Path | None = None
    model_name: str | None = None
    block_size: int = 16
    num_gpu_blocks: int = 16384
    speedup_ratio: float = 1.0
    port: int = 8000
    lease_ttl: int = 10
    #: how the frontend picks a worker: round-robin, random or kv
    router_mode: Literal["round-robin", "random", "kv"] = "round-robin"
    violations: tuple[str, ...] = ()
    failure_rate: float = 0.0
    failure_types: tuple[str, ...] = ("500",)
    crash_after_tokens: int | None = None
    stall_after_tokens: int | None = None
    startup_time: float = 0.0
    record_requests: bool = False
    ready_file: Path | None = None
    #: port of the control endpoint on loopback (0: a free one; None: no control endpoint)
    control_port: int | None = 0
    workdir: Path | None = None
    timeout: float = 60.0
    extra_worker_args: tuple[str, ...] = field(default_factory=tuple)


def _check_port(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            raise ServeError(f"port {port} on {LOOPBACK} is in use") from None


def _check_numbers(options: ServeOptions) -> None:
    if options.workers < 1:
        raise ServeError(f"--workers must be at least 1, got {options.workers}")
    if options.block_size < 2:
        raise ServeError(f"--block-size must be at least 2, got {options.block_size}")
    if options.num_gpu_blocks < 1:
        raise ServeError(f"--num-gpu-blocks must be positive, got {options.num_gpu_blocks}")
    if not math.isfinite(options.speedup_ratio) or options.speedup_ratio < 0:
        raise ServeError(
            f"--speedup-ratio must be a finite number, 0 or more, got {options.speedup_ratio}"
        )
    if options.lease_ttl < 1:
        raise ServeError(f"--lease-ttl must be at least 1 second, got {options.lease_ttl}")
    if not math.isfinite(options.startup_time) or options.startup_time < 0:
        raise ServeError(
            f"--startup-time must be a finite number, 0 or more, got {options.startup_time}"
        )
    for flag, tokens in (
        ("--crash-after-tokens", options.crash_after_tokens),
        ("--stall-after-tokens", options.stall_after_tokens),
    ):
        if tokens is not None and tokens < 1:
            raise ServeError(f"{flag} must be at least 1, got {tokens}")
    if options.model_name is not None and not options.model_name.strip():
        raise ServeError("--model-name must not be empty")


def _check_url(flag: str, url: str, schemes: tuple[str, ...], example: str) -> None:
    if not is_server_url(url, schemes):
        raise ServeError(f"{flag} must be a URL like {example}, got {url!r}")


def _check_servers(options: ServeOptions) -> None:
    """A server URL is only used with the backend that needs it: reject one given alone."""
    if options.etcd_url is not None:
        if options.discovery != "etcd":
            raise ServeError("--etcd is only used with --discovery etcd: add it, or drop --etcd")
        _check_url("--etcd", options.etcd_url, ("http", "https"), "http://127.0.0.1:2379")
    if options.nats_url is not None:
        if options.event_plane != "nats":
            raise ServeError("--nats is only used with --event-plane nats: add it, or drop --nats")
        _check_url("--nats", options.nats_url, ("nats", "tls"), "nats://127.0.0.1:4222")


def _check_paths(options: ServeOptions) -> None:
    ready_file = options.ready_file
    if ready_file is not None:
        if ready_file.is_dir():
            raise ServeError(f"--ready-file {ready_file} is a directory")
        parent = ready_file.parent
        if not parent.is_dir():
            raise ServeError(f"--ready-file {ready_file}: directory {parent} does not exist")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise ServeError(f"--ready-file {ready_file}: directory {parent} is not writable")
    workdir = options.workdir
    if workdir is not None and workdir.exists() and not workdir.is_dir():
        raise ServeError(f"--workdir {workdir} is not a directory")


def check_options(options: ServeOptions) -> frozenset[str]:
    """Validate ``options``; returns the violation modes. Raises :class:`ServeError`."""
    _check_numbers(options)
    _check_servers(options)
    _check_paths(options)
    from dynconform.mocker.routing import ROUTER_MODES  # imports zmq: only when serving

    if options.router_mode not in ROUTER_MODES:
        *others, last = ROUTER_MODES
        raise ServeError(
            f"--router-mode must be {', '.join(others)} or {last}, not {options.router_mode!r}"
        )
    try:
        check_faults(options.failure_rate, options.failure_types)
    except ValueError as exc:
        raise ServeError(str(exc)) from None
    if not 0 <= options.port < 65536:
        raise ServeError(f"--port must be between 0 and 65535, got {options.port}")
    if options.control_port is not None and not 0 <= options.control_port < 65536:
        raise ServeError(f"--control-port must be between 0 and 65535, got {options.control_port}")
    try:
        modes = check_modes(options.violations)
    except UnknownViolationError as exc:
        raise ServeError(str(exc)) from None
    for name in sorted(modes):
        for need in VIOLATIONS[name].needs:
            if need not in (options.discovery, options.event_plane):
                flag = "--discovery" if need in ("etcd", "file") else "--event-plane"
                raise ServeError(f"violation mode {name!r} needs {flag} {need}")
    if options.port:
        _check_port(options.port)
    if options.control_port:
        _check_port(options.control_port)
    if options.model_dir is not None:
        try:
            load_model_dir(options.model_dir)
        except ModelDirError as exc:
            raise ServeError(str(exc)) from None
    return modes


@dataclass
class _Child:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    ready: Path
    #: what started it: ``python -m module *argv``
    module: str
    argv: list[str]

    def last_log_line(self) -> str:
        try:
            lines = self.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return lines[-1][:300] if lines else ""

    def kill(self) -> None:
        """SIGKILL the process group (no chance to deregister) and reap the process."""
        kill_group(self.process)

    def stop(self, timeout: float = 5.0) -> None:
        stop_group(self.process, timeout)


class MockerStack(Lifecycle):
    """A running reference stack; :attr:`info` describes it (the ready file's content)."""

    def __init__(self, options: ServeOptions, *, stop: threading.Event | None = None) -> None:
        """``stop``: once set, a start in progress gives up with :class:`ServeInterrupted`
        (and stops what it started)."""
        self.options = options
        self._stop_requested = stop or threading.Event()
        self.modes = frozenset[str]()
        self.children: list[_Child] = []
        self.services: Services | None = None
        self.info: dict[str, Any] = {}
        self.control: ControlServer | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.workdir = Path()
        self._lock = threading.RLock()
        self._stopping = False

    # -- start ---------------------------------------------------------------------------------

    def _check_stop(self) -> None:
        if self._stopping or self._stop_requested.is_set():
            raise ServeInterrupted("stopped while the stack was starting")

    def start(self) -> None:
        options = self.options
        self.modes = check_options(options)
        self._check_stop()
        if options.workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="dynconform-mocker-")
            self.workdir = Path(self._tmp.name)
        else:
            self.workdir = Path(options.workdir)
            self.workdir.mkdir(parents=True, exist_ok=True)
        model_dir = options.model_dir
        if model_dir is None:
            model_dir = build_model_dir(self.workdir / "models" / "tiny")
        etcd_url, nats_url = self._start_services()
        self._check_stop()
        file_kv = self.workdir / "discovery"
        worker_modes = sorted(m for m in self.modes if VIOLATIONS[m].component == "worker")
        frontend_modes = sorted(m for m in self.modes if VIOLATIONS[m].component == "frontend")
        common = ["--discovery-backend", options.discovery]
        common += ["--file-kv", str(file_kv)] if options.discovery == "file" else []
        common += ["--etcd-url", etcd_url] if options.discovery == "etcd" else []
        for i in range(options.workers):
            argv = [
                "--model-path", str(model_dir),
                "--event-plane", options.event_plane,
                "--block-size", str(options.block_size),
                "--num-gpu-blocks-override", str(options.num_gpu_blocks),
                "--speedup-ratio", str(options.speedup_ratio),
                "--lease-ttl", str(options.lease_ttl),
                *common,
            ]  # fmt: skip
            if options.model_name:
                argv += ["--model-name", options.model_name]
            if options.event_plane == "nats":
                argv += ["--nats-url", nats_url]
            for mode in worker_modes:
                argv += ["--violate", mode]
            if options.record_requests:
                argv += ["--record-requests", str(self.workdir / f"worker-{i}.requests.jsonl")]
            if i == 0:
                argv += self._fault_args()
            argv += list(options.extra_worker_args)
            self._check_stop()
            self._spawn(f"worker-{i}", "dynconform.mocker.worker", argv)
        workers = [self._wait_ready(child) for child in self.children]
        frontend_argv = [
            "--http-host", LOOPBACK,
            "--http-port", str(options.port),
            "--ttl", str(options.lease_ttl),
            "--wait-for-instances", str(options.workers),
            "--failure-rate", str(options.failure_rate),
            "--failure-types", ",".join(options.failure_types),
            "--router-mode", options.router_mode,
            *common,
        ]  # fmt: skip
        if options.event_plane == "nats":
            frontend_argv += ["--nats-url", nats_url]
        for mode in frontend_modes:
            frontend_argv += ["--violate", mode]
        self._check_stop()
        frontend = self._wait_ready(
            self._spawn("frontend", "dynconform.mocker.frontend", frontend_argv)
        )
        self.info = self._describe(frontend, workers, file_kv, etcd_url, nats_url)
        self._check_stop()
        if options.control_port is not None:
            self.control = ControlServer(self, LOOPBACK, options.control_port)
            self.control.start()
            self.info["control"] = {"url": self.control.url}
        self._write_ready_file()

    def _write_ready_file(self) -> None:
        ready_file = self.options.ready_file
        if ready_file is not None:
            tmp = ready_file.with_name(ready_file.name + ".tmp")
            tmp.write_text(json.dumps(self.info, indent=2))
            tmp.replace(ready_file)

    def _fault_args(self) -> list[str]:
        options, argv = self.options, []
        if options.crash_after_tokens is not None:
            argv += ["--crash-after-tokens", str(options.crash_after_tokens)]
        if options.stall_after_tokens is not None:
            argv += ["--stall-after-tokens", str(options.stall_after_tokens)]
        if options.startup_time:
            argv += ["--startup-time", str(options.startup_time)]
        return argv

    def _start_services(self) -> tuple[str, str]:
        options = self.options
        etcd_url, nats_url = options.etcd_url or "", options.nats_url or ""
        try:
            if options.discovery == "etcd" and etcd_url:
                check_reachable("etcd", etcd_url)
            if options.event_plane == "nats" and nats_url:
                check_reachable("nats", nats_url)
            need_etcd = options.discovery == "etcd" and not etcd_url
            need_nats = options.event_plane == "nats" and not nats_url
            if need_etcd or need_nats:
                self.services = Services(
                    etcd=need_etcd, nats=need_nats, workdir=self.workdir / "services"
                ).__enter__()
                etcd_url = self.services.url("etcd") if need_etcd else etcd_url
                nats_url = self.services.url("nats") if need_nats else nats_url
        except ServiceError as exc:
            raise ServeError(str(exc)) from None
        return etcd_url, nats_url

    def _spawn(self, name: str, module: str, argv: list[str], *, append: bool = False) -> _Child:
        ready = self.workdir / f"{name}.ready.json"
        log = self.workdir / f"{name}.log"
        with log.open("ab" if append else "wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", module, *argv, "--ready-file", str(ready)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.workdir,
                start_new_session=True,
            )
        child = _Child(name, process, log, ready, module, argv)
        if not append:
            self.children.append(child)
        return child

    def _wait_ready(self, child: _Child) -> dict[str, Any]:
        """The child's ready file, once the child wrote it (a restarted worker's predecessor
        may have left one: its pid tells them apart). Worker 0 gets ``startup_time`` more."""
        timeout = self.options.timeout
        if child.name == "worker-0":
            timeout += self.options.startup_time
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_stop()
            with contextlib.suppress(OSError, ValueError):
                data: dict[str, Any] = json.loads(child.ready.read_text())
                if data.get("pid") == child.process.pid:
                    return data
            if child.process.poll() is not None:
                raise ServeError(
                    f"{child.name} exited at start (code {child.process.returncode}): "
                    f"{child.last_log_line()}"
                )
            time.sleep(0.05)
        raise ServeError(f"{child.name} did not become ready within {timeout:g} s")

    def _describe(
        self,
        frontend: dict[str, Any],
        workers: list[dict[str, Any]],
        file_kv: Path,
        etcd_url: str,
        nats_url: str,
    ) -> dict[str, Any]:
        options = self.options
        discovery: dict[str, Any] = {"backend": options.discovery}
        if options.discovery == "file":
            discovery["path"] = str(file_kv)
        else:
            discovery["url"] = etcd_url
        event_plane: dict[str, Any] = {"transport": options.event_plane}
        if options.event_plane == "nats":
            event_plane["url"] = nats_url
        return {
            "frontend": {"url": frontend["url"], "pid": frontend["pid"]},
            "workers": [self._worker_info(i, w) for i, w in enumerate(workers)],
            "model": workers[0]["model"],
            "discovery": discovery,
            "event_plane": event_plane,
            "violations": sorted(self.modes),
            "workdir": str(self.workdir),
        }

    def _worker_info(self, index: int, ready: dict[str, Any]) -> dict[str, Any]:
        info = {
            "instance_id": ready["instance_id"],
            "pid": ready["pid"],
            "system_url": ready["system_url"],
            "request_address": ready["request_address"],
            "events": ready["events"],
            "keys": ready["keys"],
            "log": str(self.workdir / f"worker-{index}.log"),
        }
        if self.options.record_requests:
            info["requests"] = str(self.workdir / f"worker-{index}.requests.jsonl")
        return info

    # -- supervision ---------------------------------------------------------------------------

    def _worker(self, index: int) -> _Child:
        name = f"worker-{index}"
        for child in self.children:
            if child.name == name:
                return child
        raise ControlError(404, f"no worker {index} (the stack has {self.options.workers})")

    def workers(self) -> list[dict[str, Any]]:
        """The workers as :attr:`info` describes them, each with ``alive``."""
        with self._lock:
            return [
                info | {"alive": self._worker(i).process.poll() is None}
                for i, info in enumerate(self.info.get("workers", []))
            ]

    def kill_worker(self, index: int) -> dict[str, Any]:
        """SIGKILL worker ``index`` with its process group; it gets no chance to deregister."""
        with self._lock:
            child = self._worker(index)
            child.kill()
            return {"worker": index, "pid": child.process.pid, "exit": child.process.returncode}

    def restart_worker(self, index: int) -> dict[str, Any]:
        """Start worker ``index`` again with its command line (killing it first if it still
        runs); returns its new description once it is ready and rewrites the ready file."""
        with self._lock:
            if self._stopping:
                raise ControlError(409, "the stack is stopping")
            old = self._worker(index)
            old.kill()
            child = self._spawn(old.name, old.module, old.argv, append=True)
            self.children[self.children.index(old)] = child
            try:
                ready = self._wait_ready(child)
            except ServeInterrupted:
                raise ControlError(409, "the stack is stopping") from None
            except ServeError as exc:
                raise ControlError(500, str(exc)) from None
            self.info["workers"][index] = self._worker_info(index, ready)
            self._write_ready_file()
            return dict(self.info["workers"][index])

    def reap(self) -> list[str]:
        """Collect children that exited (a crashed or killed worker); returns their names."""
        return [child.name for child in self.children if child.process.poll() is not None]

    # -- stop ----------------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop every child (frontend first) and the servers started for the stack."""
        self._stopping = True
        if self.control is not None:
            self.control.close()
            self.control = None
        with self._lock:
            for child in reversed(self.children):
                child.stop()
            self.children.clear()
        if self.services is not None:
            self.services.stop()
            self.services = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def describe(info: dict[str, Any]) -> list[str]:
    """Human-readable lines with the stack's URLs."""
    lines = [f"frontend      {info['frontend']['url']}  (model {info['model']})"]
    for i, worker in enumerate(info["workers"]):
        lines.append(
            f"worker {i}      {worker['system_url']}  (request plane tcp://"
            f"{worker['request_address']}, instance {worker['instance_id']:x})"
        )
        for topic, where in sorted(worker["events"].items()):
            lines.append(f"  events      {topic}: {where}")
    discovery = info["discovery"]
    lines.append(
        f"discovery     {discovery['backend']}: {discovery.get('path') or discovery.get('url')}"
    )
    plane = info["event_plane"]
    lines.append(
        f"event plane   {plane['transport']}" + (f": {plane['url']}" if "url" in plane else "")
    )
    if "control" in info:
        lines.append(
            f"control       {info['control']['url']}  "
            "(POST /workers/N/kill, POST /workers/N/restart)"
        )
    if info["violations"]:
        lines.append(f"violations    {', '.join(info['violations'])}")
    return lines


def serve(
    options: ServeOptions,
    *,
    out: IO[str] | None = None,
    stop: threading.Event | None = None,
    on_ready: Callable[[dict[str, Any]], None] | None = None,
) -> int:
    """Run the stack until SIGINT/SIGTERM (or ``stop`` is set); returns the exit code.

    0 once stopped after the stack was ready; 128 + the signal number (130 for SIGINT, 143
    for SIGTERM; 130 when ``stop`` was set) when stopped while it was starting, after
    stopping everything already started. Raises :class:`ServeError` (nothing left running)
    when the stack cannot start.
    """
    out = out or sys.stdout
    stop = stop or threading.Event()
    received: list[int] = []

    def on_signal(signum: int, _frame: object) -> None:
        received.append(signum)
        stop.set()

    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, on_signal)
    try:
        with MockerStack(options, stop=stop) as stack:
            for line in describe(stack.info):
                out.write(line + "\n")
            out.write("ready; Ctrl-C stops the stack\n")
            out.flush()
            if on_ready is not None:
                on_ready(stack.info)
            while not stop.wait(0.2):
                stack.reap()
    except ServeInterrupted:
        return 128 + (received[0] if received else signal.SIGINT)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0
