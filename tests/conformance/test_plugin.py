from __future__ import annotations

import json
from pathlib import Path

import pytest
from conformance_helpers import assert_no_process_left

from dynconform.conformance import Check, RunConfig, Session, Sut, run_suite
from dynconform.conformance.checks import default_checks
from dynconform.conformance.plugin import _sut_name, plugin_state
from dynconform.reports import CheckResult, load_report
from dynconform.services import free_port

pytest_plugins = ["pytester"]


def test_plugin_is_inert_without_its_options(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain():\n    assert 1 + 1 == 2\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "dynconform:" not in result.stdout.str()
    config = pytester.parseconfigure("-p", "no:cacheprovider")
    assert config.pluginmanager.has_plugin("dynconform")
    assert plugin_state(config) is None
    active = pytester.parseconfigure("--dynconform-backend", "reference")
    state = plugin_state(active)
    assert state is not None
    assert state.config.profiles == ("core", "streaming", "kv-routing")


def test_options_are_registered(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    for option in ("--dynconform-backend", "--dynconform-target", "--dynconform-timeout"):
        assert option in result.stdout.str()


def test_suite_without_options_runs_nothing(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--pyargs", "dynconform.conformance.suite"
    )
    result.assert_outcomes(skipped=1)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dynconform-profile", "nope"], "unknown profile 'nope'"),
        (["--dynconform-timeout", "nope=1"], "unknown timeout 'nope'"),
        (["--dynconform-check", "no.such-check"], "unknown check 'no.such-check'"),
        (["--dynconform-violate", "x", "--dynconform-backend", "dynamo"], "reference backend"),
    ],
)
def test_usage_errors(pytester: pytest.Pytester, args: list[str], message: str) -> None:
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--dynconform-backend", "reference", *args
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()


def test_unreachable_target_is_an_environment_error(pytester: pytest.Pytester) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = pytester.runpytest(
        "-p", "no:cacheprovider",
        "--pyargs", "dynconform.conformance.suite",
        "--dynconform-target", url,
        "--dynconform-timeout", "startup=0.5",
        "--dynconform-check", "http.chat.valid",
    )  # fmt: skip
    assert result.ret == 2
    assert "did not list a model" in result.stdout.str()


@pytest.mark.slow
def test_reference_run_inside_another_project(pytester: pytest.Pytester, tmp_path: Path) -> None:
    pytester.makepyfile(test_mine="def test_mine():\n    assert True\n")
    report_dir = tmp_path / "report"
    result = pytester.runpytest(
        "-p", "no:cacheprovider",
        "test_mine.py",
        "--pyargs", "dynconform.conformance.suite",
        "--dynconform-backend", "reference",
        "--dynconform-report-dir", str(report_dir),
        "--dynconform-check", "http.chat.valid",
        "--dynconform-check", "http.stream.done-terminator",
        "--dynconform-check", "events.messages-valid",
        "--dynconform-check", "openai.errors.envelope",
        "--dynconform-profile", "core",
        "--dynconform-profile", "streaming",
        "--dynconform-profile", "openai-strict",
        "--dynconform-progress",
    )  # fmt: skip
    result.assert_outcomes(passed=4, xfailed=1)
    assert "PASS  http.chat.valid" in result.stdout.str()
    report = load_report(report_dir / "report.yaml")
    assert report.passed
    assert [c.id for c in report.checks] == [
        "http.chat.valid",
        "http.stream.done-terminator",
        "openai.errors.envelope",
        "events.messages-valid",
    ]
    assert report.check("openai.errors.envelope").known_deviation
    assert report.implementation.backend == "reference"
    assert report.taps["events"]["messages"] > 0
    assert json.loads((report_dir / "report.json").read_text())["kind"] == "ConformanceReport"
    assert "<testsuite" in (report_dir / "junit.xml").read_text()
    assert (report_dir / "logs" / "reference.log").is_file()
    assert_no_process_left(str(report_dir))


@pytest.mark.slow
def test_an_interrupted_run_reports_the_checks_it_did_not_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C during a run: the report written says which checks never ran, and fails."""
    executed: list[str] = []
    execute = Session.execute

    def interrupt_at_the_third(self: Session, check: Check) -> CheckResult:
        if len(executed) == 2:
            raise KeyboardInterrupt
        executed.append(check.id)
        return execute(self, check)

    monkeypatch.setattr(Session, "execute", interrupt_at_the_third)
    config = RunConfig(profiles=("core",), report_dir=tmp_path / "report")
    selected = default_checks().select(config.profiles, None)
    outcome = run_suite(config, progress=False)
    assert outcome.exit_code == 130
    report = outcome.report
    assert report is not None
    assert not report.passed
    by_status = {c.id: c.status for c in report.checks}
    assert set(by_status) == {c.id for c in selected}
    assert [i for i, status in by_status.items() if status != "error"] == executed
    not_run = [c for c in report.checks if c.id not in executed]
    assert len(not_run) == len(selected) - 2
    assert all(c.reason == "not run: the run was interrupted" for c in not_run)
    saved = load_report(tmp_path / "report" / "report.json")
    assert not saved.passed
    assert saved.statistics.error == len(selected) - 2
    assert_no_process_left(str(tmp_path))


def test_the_ready_line_leaves_out_an_unknown_version() -> None:
    def sut(version: str) -> Sut:
        return Sut("deployment", version, "target", "external", "http://x", frozenset())

    assert _sut_name(sut("unknown")) == "deployment"
    assert _sut_name(sut("1.6.1")) == "deployment 1.6.1"
