"""A conformance session: start the system under test and the taps, run checks, report.

The pytest plugin drives one :class:`Session` per pytest run; the same object can be used
directly::

    with Session(RunConfig(profiles=("core",))) as session:
        results = [session.execute(c) for c in session.selected()]
        report = session.report(results)
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dynconform import __version__
from dynconform.conformance._check import Check, CheckRegistry
from dynconform.conformance._context import Context, Shared
from dynconform.conformance._discovery_tap import DiscoveryTap, check_location, discovery_tap
from dynconform.conformance._errors import CheckFailed, CheckSkipped, SutError
from dynconform.conformance._event_tap import EventTap, NatsTap, ZmqEventTap
from dynconform.conformance._expectations import (
    Expectations,
    apply_expectations,
    bundled_expectations,
    load_expectations,
)
from dynconform.conformance._launch import Launcher, Plan, wait_for_model
from dynconform.conformance._profiles import DEFAULT_PROFILES, FEATURES, PROFILES
from dynconform.conformance._reproduce import reproduce_command
from dynconform.conformance._sut import Sut, WorkerEndpoint
from dynconform.conformance._timeouts import Timeouts
from dynconform.reports import (
    CheckResult,
    ConformanceReport,
    Implementation,
    markdown,
    write_html,
    write_junit,
    write_report,
)
from dynconform.services import Lifecycle, is_server_url

__all__ = ["BACKENDS", "TOPOLOGIES", "RunConfig", "Session", "execute", "make_launcher"]

BACKENDS = ("reference", "dynamo", "vllm", "sglang", "trtllm")
TOPOLOGIES = ("file", "etcd-nats")
#: Features a running deployment (``--target``) is assumed to have unless told otherwise.
TARGET_FEATURES = ("token-prompts", "ignore-eos")

_HTTP = ("http", "https")


@dataclass(frozen=True)
class RunConfig:
    """Everything one run needs; the CLI and the pytest plugin both build one."""

    backend: str = "reference"
    topology: str = "file"
    target: str | None = None
    discovery: str | None = None
    event_plane: str | None = None
    worker_urls: tuple[str, ...] = ()
    model: str | None = None
    model_path: Path | None = None
    dynamo_version: str | None = None
    sut_python: str | None = None
    profiles: tuple[str, ...] = DEFAULT_PROFILES
    check_ids: tuple[str, ...] | None = None
    timeouts: Timeouts = field(default_factory=Timeouts)
    seed: int = 0
    report_dir: Path | None = None
    expectations: Path | None = None
    violations: tuple[str, ...] = ()
    features: tuple[str, ...] = ()

    def validate(self) -> None:
        """Raise :class:`ValueError` (one line) for an inconsistent configuration."""
        for profile in self.profiles:
            if profile not in PROFILES:
                raise ValueError(f"unknown profile {profile!r} (known: {', '.join(PROFILES)})")
        for feature in self.features:
            if feature not in FEATURES:
                raise ValueError(f"unknown feature {feature!r} (known: {', '.join(FEATURES)})")
        if self.target is None:
            if self.backend not in BACKENDS:
                raise ValueError(f"unknown backend {self.backend!r} ({', '.join(BACKENDS)})")
            if self.topology not in TOPOLOGIES:
                raise ValueError(f"unknown topology {self.topology!r} ({', '.join(TOPOLOGIES)})")
            if self.discovery or self.event_plane or self.worker_urls:
                raise ValueError("--discovery, --event-plane and --worker-url need --target")
        else:
            given = [
                flag
                for flag, value in (
                    ("--backend", self.backend != "reference"),
                    ("--topology", self.topology != "file"),
                    ("--dynamo-version", self.dynamo_version is not None),
                    ("--sut-python", self.sut_python is not None),
                )
                if value
            ]
            if given:
                raise ValueError(
                    f"--target attaches to a running deployment: {', '.join(given)} "
                    "only apply to a deployment dynconform starts"
                )
            if self.discovery:
                check_location(self.discovery)
        if self.backend == "reference" and (self.dynamo_version or self.sut_python):
            raise ValueError("--dynamo-version and --sut-python apply to a real backend")
        if self.dynamo_version and self.sut_python:
            raise ValueError("give --dynamo-version or --sut-python, not both")
        if self.violations and (self.target is not None or self.backend != "reference"):
            raise ValueError("--violate only applies to the reference backend")
        engine = self.backend in ("vllm", "sglang", "trtllm")
        if engine and self.model_path is None and self.target is None:
            raise ValueError(f"--backend {self.backend} needs --model-path")
        real = self.target is None and self.backend != "reference"
        if real and self.dynamo_version is None and self.sut_python is None:
            raise ValueError(
                f"--backend {self.backend} needs --dynamo-version VERSION or --sut-python PATH"
            )
        if self.target is not None and not is_server_url(self.target, _HTTP, port=False):
            raise ValueError(f"--target {self.target!r}: expected http://HOST:PORT")
        for url in self.worker_urls:
            if not is_server_url(url, _HTTP, port=False):
                raise ValueError(f"--worker-url {url!r}: expected http://HOST:PORT")
        if self.report_dir is not None:
            _check_directory("--report-dir", self.report_dir)
        if self.expectations is not None:
            load_expectations(self.expectations)  # InputError (one line) when unusable


def _check_directory(flag: str, path: Path) -> None:
    """Refuse a directory that cannot be one: an existing file, or a file in its path."""
    for place in (path, *path.parents):
        if place.exists() and not place.is_dir():
            raise ValueError(f"{flag} {path}: {place} is not a directory")


class TargetLauncher:
    """Attaches to a running deployment: starts nothing."""

    def __init__(self, config: RunConfig) -> None:
        self.config = config

    def plan(self) -> Plan:
        plan = Plan("target", "external")
        plan.notes.append(f"frontend {self.config.target} (nothing is started)")
        return plan

    def start(self, log_dir: Path, timeout: float) -> Sut:
        config = self.config
        assert config.target is not None
        features = set(TARGET_FEATURES) | set(config.features)
        if config.discovery:
            features.add("discovery-tap")
        if config.event_plane:
            features |= {"event-plane-tap", "kv-events"}
            if config.event_plane.startswith("nats://") and config.discovery:
                features.add("request-plane-tap")  # request subjects come from discovery
        if config.worker_urls:
            features.add("worker-system-server")
        return Sut(
            name="deployment",
            version="unknown",
            backend="target",
            topology="external",
            frontend_url=config.target.rstrip("/"),
            features=frozenset(features),
            model=config.model,
            workers=tuple(
                WorkerEndpoint(f"worker-{i}", url.rstrip("/"))
                for i, url in enumerate(config.worker_urls)
            ),
            discovery=config.discovery,
            event_plane=config.event_plane,
            request_plane=config.event_plane if "request-plane-tap" in features else None,
        )

    def stop(self) -> None:
        pass


def make_launcher(config: RunConfig, workdir: Path | None = None) -> Launcher:
    """The launcher for ``config`` (nothing is started yet)."""
    if config.target is not None:
        return TargetLauncher(config)
    if config.backend == "reference":
        from dynconform.conformance._reference import ReferenceLauncher

        return ReferenceLauncher(
            topology=config.topology,
            violations=config.violations,
            model=config.model,
            model_path=config.model_path,
            workdir=workdir,
            shutdown=config.timeouts.shutdown,
        )
    from dynconform.conformance._dynamo import DynamoLauncher

    return DynamoLauncher(config, workdir=workdir)


def execute(check: Check, ctx: Context) -> CheckResult:
    """Run one check; every outcome (even an unexpected exception) becomes a result."""
    start = time.monotonic()
    status, reason = "passed", ""
    violations: tuple[dict[str, Any], ...] = ()
    try:
        missing = [f for f in check.features if f not in ctx.sut.features]
        if missing:
            raise CheckSkipped(f"the backend does not declare feature(s): {', '.join(missing)}")
        check.function(ctx)
    except CheckFailed as exc:
        status, reason, violations = "failed", str(exc), exc.violations
    except CheckSkipped as exc:
        status, reason = "skipped", str(exc)
    except (KeyboardInterrupt, SystemExit, GeneratorExit):
        raise
    except BaseException as exc:  # a check's bug or a library's exception group
        status, reason = "error", f"{type(exc).__name__}: {exc}"
    return _result(check, status, reason, time.monotonic() - start, violations)


def not_run(check: Check, reason: str) -> CheckResult:
    """The result of a selected check that never ran (an error: a report must not pass
    checks it did not run)."""
    return _result(check, "error", f"not run: {reason}")


def _result(
    check: Check,
    status: str,
    reason: str,
    duration: float = 0.0,
    violations: tuple[dict[str, Any], ...] = (),
) -> CheckResult:
    return CheckResult(
        id=check.id,
        title=check.title,
        status=status,  # type: ignore[arg-type]
        profiles=check.profiles,
        severity=check.severity,
        level=check.level,
        features=check.features,
        contracts=check.contracts,
        rules=check.rules,
        reason=reason,
        duration=duration,
        violations=tuple(violations),
    )


class Session(Lifecycle):
    """One run against one system under test."""

    def __init__(self, config: RunConfig, registry: CheckRegistry | None = None) -> None:
        from dynconform.conformance.checks import default_checks

        config.validate()
        self.config = config
        self.registry = registry if registry is not None else default_checks()
        self.shared = Shared()
        self.sut: Sut | None = None
        self.discovery: DiscoveryTap | None = None
        self.events: EventTap | None = None
        self.launcher: Launcher | None = None
        self.started_at = ""
        self._start = 0.0
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.workdir = Path()

    # -- lifecycle ----------------------------------------------------------------------------

    def selected(self) -> list[Check]:
        return self.registry.select(self.config.profiles, self.config.check_ids)

    def start(self) -> Sut:
        """Start (or attach to) the system under test and the taps; raise :class:`SutError`."""
        config = self.config
        self._start = time.monotonic()
        self.started_at = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
        if config.report_dir is not None:
            self.workdir = config.report_dir.resolve()
            self.workdir.mkdir(parents=True, exist_ok=True)
        else:
            self._tmp = tempfile.TemporaryDirectory(prefix="dynconform-run-")
            self.workdir = Path(self._tmp.name)
        timeouts = config.timeouts
        try:
            self.launcher = make_launcher(config, self.workdir / "sut")
            self.sut = self.launcher.start(self.workdir / "logs", timeouts.startup)
            wait_for_model(self.sut.frontend_url, self.sut.model, timeouts.startup, [])
            self._start_taps(self.sut)
        except BaseException:
            self.stop()
            raise
        return self.sut

    def _start_taps(self, sut: Sut) -> None:
        timeouts = self.config.timeouts
        if sut.discovery:
            try:
                self.discovery = discovery_tap(sut.discovery)
                self.discovery.start()
            except (ValueError, OSError) as exc:
                raise SutError(f"cannot read discovery at {sut.discovery}: {exc}") from None
            self.discovery.wait_for_record("Model", timeouts.registration)
        plane = sut.event_plane
        if plane and plane.startswith("nats://"):
            self.events = NatsTap(plane, self.discovery)
            self.events.start(timeouts.registration)
            if self.events.errors:
                raise SutError(f"cannot subscribe to NATS at {plane}: {self.events.errors[0]}")
        elif plane and plane.startswith("zmq"):
            fixed = tuple(e for e in plane.removeprefix("zmq://").split(",") if e and e != "zmq")
            if self.discovery is None and not fixed:
                raise SutError("a ZMQ event plane is found through discovery: give --discovery")
            tap = ZmqEventTap(self.discovery, endpoints=fixed)
            self.events = tap
            if self.discovery is not None:
                self.discovery.wait_for_record("EventChannel", timeouts.registration)
            tap.start()
            tap.wait_connected(timeouts.registration)
        elif plane:
            raise SutError(f"event plane {plane!r}: expected zmq, zmq://HOST:PORT,... or nats://")

    def stop(self) -> None:
        for tap in (self.events, self.discovery):
            if tap is not None:
                with contextlib.suppress(Exception):
                    tap.stop()
        if self.launcher is not None:
            self.launcher.stop()
            self.launcher = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    # -- checks -------------------------------------------------------------------------------

    def context(self, check: Check) -> Context:
        if self.sut is None:
            raise SutError("the session is not started")
        return Context(
            check,
            self.sut,
            timeouts=self.config.timeouts,
            seed=self.config.seed,
            shared=self.shared,
            discovery=self.discovery,
            events=self.events,
        )

    def execute(self, check: Check) -> CheckResult:
        return execute(check, self.context(check))

    # -- report -------------------------------------------------------------------------------

    def expectations(self) -> Expectations | None:
        config = self.config
        if config.expectations is not None:
            return load_expectations(config.expectations)
        if config.target is None and config.backend == "reference":
            return bundled_expectations("reference")
        if self.sut is not None and self.sut.name == "ai-dynamo":
            return bundled_expectations(f"ai-dynamo-{self.sut.version}")
        return None

    def taps_summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.discovery is not None:
            out["discovery"] = self.discovery.summary()
        if self.events is not None:
            out["events"] = self.events.summary()
        return out

    def report(self, results: Sequence[CheckResult]) -> ConformanceReport:
        sut = self.sut
        expectations = self.expectations()
        topology = sut.topology if sut else self.config.topology
        applied = [
            dataclasses.replace(r, reproduce=r.reproduce or reproduce_command(self.config, r.id))
            for r in apply_expectations(results, expectations, topology)
        ]
        implementation = Implementation(
            name=sut.name if sut else "unknown",
            version=sut.version if sut else "unknown",
            backend=sut.backend if sut else self.config.backend,
            topology=topology,
            details=dict(sut.details) if sut else {},
        )
        features = sut.features if sut else frozenset()
        return ConformanceReport.build(
            implementation,
            applied,
            profiles=self.config.profiles,
            supported_features=sorted(features),
            date=self.started_at,
            dynconform_version=__version__,
            seed=self.config.seed,
            duration=time.monotonic() - self._start if self._start else 0.0,
            timeouts=self.config.timeouts.as_dict(),
            taps=self.taps_summary(),
            expectations=expectations.source if expectations else None,
            measurements=self.shared.latencies.measurements(),
        )

    def write(self, report: ConformanceReport) -> list[Path]:
        """Write the report into the report directory, if any.

        JSON and YAML (the versioned report), JUnit XML, a self-contained HTML page and a
        Markdown summary (for a PR comment or ``$GITHUB_STEP_SUMMARY``).
        """
        if self.config.report_dir is None:
            return []
        directory = self.config.report_dir
        paths = write_report(report, directory)
        paths.append(write_junit(report, directory / "junit.xml"))
        paths.append(write_html(report, directory / "report.html"))
        summary = directory / "summary.md"
        summary.write_text(markdown(report), encoding="utf-8")
        paths.append(summary)
        return paths
