"""Library entry points of ``dynconform run``: run the suite through pytest, or plan a run."""

from __future__ import annotations

import contextlib
import io
import signal
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from dynconform.conformance._errors import SutError
from dynconform.conformance._session import RunConfig, make_launcher
from dynconform.conformance.plugin import plugin_state
from dynconform.reports import ConformanceReport

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "RunOutcome",
    "plan_lines",
    "pytest_args",
    "run_suite",
]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
SUITE = Path(__file__).with_name("suite.py")


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """How a run ended: the exit code, the report (if the suite ran) and an error line."""

    exit_code: int
    report: ConformanceReport | None = None
    error: str | None = None


def pytest_args(config: RunConfig, *, progress: bool = True) -> list[str]:
    """The plugin options that reproduce ``config`` (also usable with plain ``pytest``)."""
    args = ["--dynconform-backend", config.backend, "--dynconform-topology", config.topology]
    if config.target:
        args = ["--dynconform-target", config.target]
    single = {
        "--dynconform-discovery": config.discovery,
        "--dynconform-event-plane": config.event_plane,
        "--dynconform-model": config.model,
        "--dynconform-model-path": str(config.model_path) if config.model_path else None,
        "--dynconform-dynamo-version": config.dynamo_version,
        "--dynconform-sut-python": config.sut_python,
        "--dynconform-report-dir": str(config.report_dir) if config.report_dir else None,
        "--dynconform-expectations": str(config.expectations) if config.expectations else None,
    }
    for flag, value in single.items():
        if value:
            args += [flag, value]
    repeated = {
        "--dynconform-worker-url": config.worker_urls,
        "--dynconform-profile": config.profiles,
        "--dynconform-check": config.check_ids or (),
        "--dynconform-violate": config.violations,
        "--dynconform-feature": config.features,
        "--dynconform-timeout": tuple(f"{k}={v:g}" for k, v in config.timeouts.overrides.items()),
    }
    for flag, values in repeated.items():
        for value in values:
            args += [flag, value]
    args += ["--dynconform-seed", str(config.seed)]
    if progress:
        args.append("--dynconform-progress")
    return args


class _Collector:
    """Picks the report out of the plugin's state before pytest forgets it."""

    def __init__(self) -> None:
        self.report: ConformanceReport | None = None
        self.startup_error: str | None = None

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        state = plugin_state(config)
        if state is not None:
            self.report = state.report
            self.startup_error = state.startup_error


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so that every started process is stopped."""

    def handler(signum: int, frame: FrameType | None) -> Any:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_suite(config: RunConfig, *, progress: bool = True) -> RunOutcome:
    """Run the conformance suite through pytest and return the outcome.

    Exit codes: 0 every required check passed (known deviations excepted), 1 a check failed,
    2 usage or environment error (the system under test could not start), 130 interrupted.
    """
    config.validate()
    with tempfile.TemporaryDirectory(prefix="dynconform-pytest-") as tmp:
        ini = Path(tmp) / "pytest.ini"
        ini.write_text("[pytest]\n")
        args = [
            str(SUITE),
            "-c", str(ini),
            "--rootdir", tmp,
            "-p", "no:cacheprovider",
            "-p", "no:terminal",
            "-W", "ignore::pytest.PytestAssertRewriteWarning",
            *pytest_args(config, progress=progress),
        ]  # fmt: skip
        collector = _Collector()
        quiet = contextlib.nullcontext() if progress else contextlib.redirect_stdout(io.StringIO())
        with _sigterm_interrupts(), quiet:
            code = pytest.main(args, plugins=[collector])
    if collector.startup_error is not None:
        return RunOutcome(EXIT_USAGE, None, collector.startup_error)
    if code == pytest.ExitCode.INTERRUPTED:
        return RunOutcome(EXIT_INTERRUPTED, collector.report, "interrupted")
    if code == pytest.ExitCode.USAGE_ERROR:
        return RunOutcome(EXIT_USAGE, None, "invalid options for the conformance suite")
    if collector.report is None:
        return RunOutcome(EXIT_USAGE, None, f"the suite did not run (pytest exit code {int(code)})")
    return RunOutcome(EXIT_OK if collector.report.passed else EXIT_FAILED, collector.report)


def plan_lines(config: RunConfig) -> list[str]:
    """What a run would start (``--dry-run``): processes, ports and environment."""
    config.validate()
    workdir = config.report_dir / "sut" if config.report_dir else None
    try:
        plan = make_launcher(config, workdir).plan()
    except SutError as exc:
        raise ValueError(str(exc)) from None
    lines = plan.lines()
    lines.append(
        "pytest  pytest --pyargs dynconform.conformance.suite "
        + " ".join(pytest_args(config, progress=False))
    )
    return lines
