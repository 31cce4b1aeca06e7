"""The pytest plugin behind ``dynconform run`` (entry point ``pytest11``: ``dynconform``).

It is inert unless ``--dynconform-backend`` or ``--dynconform-target`` is given. Then the suite
module (``dynconform.conformance.suite``) gets one test per selected check; the system under
test starts with the first of them and stops when the session ends, and the report is written
to ``--dynconform-report-dir``::

    pytest --pyargs dynconform.conformance.suite --dynconform-backend reference
    pytest --pyargs dynconform.conformance.suite --dynconform-target http://127.0.0.1:8000 \\
        --dynconform-discovery etcd://127.0.0.1:2379 --dynconform-event-plane nats://...

State lives in ``config.stash``; nothing happens at import time.
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from dynconform.conformance._check import Check
from dynconform.conformance._errors import SutError
from dynconform.conformance._expectations import Expectations, apply_expectations
from dynconform.conformance._profiles import DEFAULT_PROFILES
from dynconform.conformance._session import (
    BACKENDS,
    TOPOLOGIES,
    RunConfig,
    Session,
    not_run,
)
from dynconform.conformance._sut import Sut
from dynconform.conformance._timeouts import Timeouts
from dynconform.contracts import InputError
from dynconform.reports import CheckResult, ConformanceReport

__all__ = ["PluginState", "plugin_state", "run_config_from_options"]

_SYMBOLS = {"passed": "PASS", "failed": "FAIL", "skipped": "SKIP", "error": "ERROR"}


@dataclass
class PluginState:
    """What the plugin keeps for one pytest session."""

    config: RunConfig
    selected: list[Check]
    progress: bool = False
    session: Session | None = None
    results: list[CheckResult] = field(default_factory=list)
    report: ConformanceReport | None = None
    expectations: Expectations | None = None
    startup_error: str | None = None
    #: node ids of the suite's tests, whose pytest status letters progress lines replace
    nodeids: set[str] = field(default_factory=set)


_STATE = pytest.StashKey[PluginState]()


def plugin_state(config: pytest.Config) -> PluginState | None:
    """The plugin's state in a pytest run, or ``None`` when the plugin is inactive."""
    return config.stash.get(_STATE, None)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("dynconform", "dynconform conformance suite")
    add = group.addoption
    add("--dynconform-backend", choices=BACKENDS, help="system under test to launch")
    add("--dynconform-target", metavar="URL", help="frontend URL of a running deployment")
    add("--dynconform-topology", choices=TOPOLOGIES, default="file", help="default: file")
    add("--dynconform-discovery", metavar="URL", help="file:///DIR or etcd://HOST:PORT")
    add("--dynconform-event-plane", metavar="URL", help="zmq, zmq://HOST:PORT,... or nats://")
    add("--dynconform-worker-url", action="append", default=[], metavar="URL")
    add("--dynconform-model", metavar="NAME", help="served model name")
    add("--dynconform-model-path", metavar="DIR", help="model directory for the worker")
    add("--dynconform-dynamo-version", metavar="VERSION", help="provision ai-dynamo VERSION")
    add("--dynconform-sut-python", metavar="PATH", help="Python with ai-dynamo installed")
    add("--dynconform-profile", action="append", default=[], metavar="NAME")
    add("--dynconform-check", action="append", default=[], metavar="ID")
    add("--dynconform-timeout", action="append", default=[], metavar="NAME=SECONDS")
    add("--dynconform-seed", type=int, default=0, metavar="N")
    add("--dynconform-report-dir", metavar="DIR", help="write report, JUnit XML and logs here")
    add("--dynconform-expectations", metavar="FILE", help="known deviations (YAML)")
    add("--dynconform-violate", action="append", default=[], metavar="MODE")
    add("--dynconform-feature", action="append", default=[], metavar="NAME")
    add("--dynconform-progress", action="store_true", help="one line per check as it ends")


def run_config_from_options(option: Any) -> RunConfig:
    """Build a :class:`RunConfig` from parsed ``--dynconform-*`` options."""
    try:
        timeouts = Timeouts.parse(option.dynconform_timeout)
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None

    def path(value: str | None) -> Path | None:
        return Path(value) if value else None

    config = RunConfig(
        backend=option.dynconform_backend or "reference",
        topology=option.dynconform_topology,
        target=option.dynconform_target,
        discovery=option.dynconform_discovery,
        event_plane=option.dynconform_event_plane,
        worker_urls=tuple(option.dynconform_worker_url),
        model=option.dynconform_model,
        model_path=path(option.dynconform_model_path),
        dynamo_version=option.dynconform_dynamo_version,
        sut_python=option.dynconform_sut_python,
        profiles=tuple(option.dynconform_profile) or DEFAULT_PROFILES,
        check_ids=tuple(option.dynconform_check) or None,
        timeouts=timeouts,
        seed=option.dynconform_seed,
        report_dir=path(option.dynconform_report_dir),
        expectations=path(option.dynconform_expectations),
        violations=tuple(option.dynconform_violate),
        features=tuple(option.dynconform_feature),
    )
    try:
        config.validate()
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    return config


def pytest_configure(config: pytest.Config) -> None:
    option = config.option
    if not (
        getattr(option, "dynconform_backend", None) or getattr(option, "dynconform_target", None)
    ):
        return
    run_config = run_config_from_options(option)
    from dynconform.conformance.checks import default_checks

    try:
        selected = default_checks().select(run_config.profiles, run_config.check_ids)
    except KeyError as exc:
        raise pytest.UsageError(str(exc.args[0])) from None
    config.stash[_STATE] = PluginState(
        run_config, selected, progress=bool(option.dynconform_progress)
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "dynconform_check" not in metafunc.fixturenames:
        return
    state = plugin_state(metafunc.config)
    checks = state.selected if state is not None else []
    metafunc.parametrize("dynconform_check", checks, ids=[c.id for c in checks])


def _say(config: pytest.Config, line: str) -> None:
    """Write a progress line to the terminal, even while output is being captured."""
    capture = config.pluginmanager.get_plugin("capturemanager")
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        if reporter is not None:
            reporter.write_line(line)
        else:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()


@pytest.fixture(scope="session")
def dynconform_session(request: pytest.FixtureRequest) -> Session:
    """The started conformance session (skips when the plugin is inactive)."""
    state = plugin_state(request.config)
    if state is None:
        pytest.skip("the dynconform plugin is inactive: give --dynconform-backend or -target")
    if state.session is None:
        session = Session(state.config)
        if state.progress:
            where = state.config.target or f"{state.config.backend} ({state.config.topology})"
            _say(request.config, f"dynconform: starting {where}")
        try:
            session.start()
            state.expectations = session.expectations()
        except (SutError, InputError) as exc:
            state.startup_error = str(exc)
            pytest.exit(f"dynconform: error: {exc}", returncode=2)
        state.session = session
        if state.progress:
            assert session.sut is not None
            _say(
                request.config,
                f"dynconform: {_sut_name(session.sut)} ready "
                f"at {session.sut.frontend_url}; {len(state.selected)} checks",
            )
    return state.session


def _sut_name(sut: Sut) -> str:
    """``name version``, or the name alone when the version is not known."""
    return sut.name if sut.version == "unknown" else f"{sut.name} {sut.version}"


def run_check(config: pytest.Config, session: Session, check: Check) -> CheckResult:
    """Execute one check, record its result, and turn it into the pytest outcome."""
    state = plugin_state(config)
    assert state is not None
    result = session.execute(check)
    state.results.append(result)
    judged = apply_expectations([result], state.expectations, session.config.topology)[0]
    if state.progress:
        done = len(state.results)
        mark = _SYMBOLS[result.status]
        if judged.known_deviation is not None:
            mark = "XFAIL"
        _say(
            config,
            f"[{done:>3}/{len(state.selected)}] {mark:<5} {check.id} ({result.duration:.2f} s)"
            + (f"  {result.reason[:160]}" if result.status != "passed" else ""),
        )
    if result.status == "skipped":
        pytest.skip(result.reason)
    if result.status in ("failed", "error"):
        if judged.known_deviation is not None:
            pytest.xfail(f"known deviation: {judged.known_deviation}")
        if check.severity != "required":
            pytest.xfail(f"recommended check failed: {result.reason}")
        pytest.fail(f"[{check.id}] {result.reason}", pytrace=False)
    return result


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    state = plugin_state(config)
    if state is None:
        return
    for item in items:
        if "dynconform_check" in getattr(item, "fixturenames", ()):
            state.nodeids.add(item.nodeid)


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> Any:
    state = plugin_state(config)
    if state is None or not state.progress or report.nodeid not in state.nodeids:
        return None
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        category = "xfailed" if hasattr(report, "wasxfail") else report.outcome
        return category, "", ""
    return None


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = plugin_state(session.config)
    if state is None or state.session is None:
        return
    if exitstatus == pytest.ExitCode.INTERRUPTED:
        done = {result.id for result in state.results}
        state.results += [
            not_run(check, "the run was interrupted")
            for check in state.selected
            if check.id not in done
        ]
    try:
        state.report = state.session.report(state.results)
        paths = state.session.write(state.report)
        if state.progress and paths:
            _say(session.config, f"dynconform: report written to {paths[0].parent}")
    finally:
        state.session.stop()
        state.session = None
