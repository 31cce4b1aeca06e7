"""The GitHub workflows and the composite action: actionlint and zizmor (offline) find nothing,
and both catch a workflow with template injection; the action's gate script gives the right
verdict, outputs and exit code for a passing and a breaking API change."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dynconform.cli import main

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
ACTION = ROOT / "action.yml"

INJECTION = """\
name: greet
on:
  pull_request:
permissions: {}
jobs:
  greet:
    runs-on: ubuntu-24.04
    permissions:
      contents: read
    steps:
      - run: echo "Thanks for ${{ github.event.pull_request.title }}"
"""


def _tool(name: str) -> str:
    """The tool from this environment (``pip install -e '.[dev]'`` provides it), else PATH."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: pip install -e '.[dev]'", pytrace=False)
    return found


def _run(
    *args: str, cwd: Path = ROOT, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_there_are_workflows_and_an_action() -> None:
    assert {p.name for p in WORKFLOWS} >= {"ci.yml", "release-report.yml"}
    assert ACTION.is_file()


def test_actionlint_is_clean() -> None:
    proc = _run(_tool("actionlint"), "-no-color", *map(str, WORKFLOWS))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout == ""


def test_zizmor_is_clean() -> None:
    proc = _run(_tool("zizmor"), "--offline", "--no-progress", ".github/workflows", "action.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "No findings to report" in proc.stdout


def test_both_linters_catch_template_injection(tmp_path: Path) -> None:
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "greet.yml").write_text(INJECTION, encoding="utf-8")
    zizmor = _run(_tool("zizmor"), "--offline", "--no-progress", str(workflows))
    assert zizmor.returncode != 0
    assert "template-injection" in zizmor.stdout
    actionlint = _run(_tool("actionlint"), "-no-color", str(workflows / "greet.yml"))
    assert actionlint.returncode != 0
    assert "github.event.pull_request.title" in actionlint.stdout


def test_actions_are_pinned_and_checkouts_drop_credentials() -> None:
    for path in [*WORKFLOWS, ACTION]:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        jobs = doc.get("jobs") or {"action": doc["runs"]}
        for job in jobs.values():
            for step in job.get("steps", ()):
                uses = step.get("uses")
                if uses is None:
                    continue
                ref = uses.rpartition("@")[2]
                assert re.fullmatch("[0-9a-f]{40}", ref), f"{path.name}: {uses}"
                if uses.startswith("actions/checkout@"):
                    assert step["with"]["persist-credentials"] is False
        if path in WORKFLOWS:
            assert doc["permissions"] == {}, path.name


# -- the composite action's gate script, run as a runner would run it ----------------------

PACKAGE = '"""A tiny package under governance."""\n\n__all__ = ["f", "g"]\n\n'
#: stands in for dynconform: writes a report with $STUB_BREAKING breaking changes (or failed
#: checks, and $STUB_ERRORS errored ones) where -o points, prints what it was asked, exits with
#: $STUB_RC (``report render`` with 0, as the real one does)
STUB = """#!/bin/sh
echo "stub: $*"
out=""
prev=""
for arg in "$@"; do
  if [ "$prev" = "-o" ]; then out=$arg; fi
  prev=$arg
done
if [ "$1" = report ]; then
  exit 0
elif [ "$1" = run ]; then
  dir=$(printf '%s\\n' "$@" | sed -n '/--report-dir/{n;p;}')
  printf '{"statistics": {"failed": %s, "error": %s}}' "$STUB_BREAKING" "${STUB_ERRORS:-0}" \\
    > "$dir/report.json"
elif [ -n "$out" ]; then
  printf '{"summary": {"stable": {"breaking": %s}}}' "$STUB_BREAKING" > "$out"
fi
exit "$STUB_RC"
"""


def _gate_script() -> str:
    doc = yaml.safe_load(ACTION.read_text(encoding="utf-8"))
    (step,) = [s for s in doc["runs"]["steps"] if s.get("id") == "gate"]
    script: str = step["run"]
    return script


def _stub_venv(tmp_path: Path) -> Path:
    venv = tmp_path / "stub-venv"
    (venv / "bin").mkdir(parents=True)
    stub = venv / "bin" / "dynconform"
    stub.write_text(STUB, encoding="utf-8")
    stub.chmod(0o755)
    (venv / "bin" / "python").symlink_to(sys.executable)
    return venv


def _gate(tmp_path: Path, venv: Path, **inputs: str) -> tuple[int, dict[str, str], str]:
    """Run the gate step with the dynconform of ``venv``; return its exit code, its outputs
    and what it wrote (job summary, then standard output and error)."""
    runner = tmp_path / "runner"
    runner.mkdir(exist_ok=True)
    link = runner / "dynconform-venv"
    link.unlink(missing_ok=True)
    link.symlink_to(venv)
    output, summary = runner / "output", runner / "summary"
    output.write_text("", encoding="utf-8")
    summary.write_text("", encoding="utf-8")
    script = runner / "gate.sh"
    script.write_text(_gate_script(), encoding="utf-8")
    env = {
        **os.environ,
        "RUNNER_TEMP": str(runner),
        "GITHUB_OUTPUT": str(output),
        "GITHUB_STEP_SUMMARY": str(summary),
        "DYNCONFORM_CACHE": str(tmp_path / "cache"),
        "MODE": "api",
        "BACKEND": "reference",
        "BASELINE": "base.json",
        "SOURCE": "src",
        "TIERS": "",
        "FAIL_ON": "failure",
        "REPORT_DIR": "out",
        "STUB_RC": "0",
        "STUB_BREAKING": "0",
        **inputs,
    }
    proc = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    outputs = dict(
        line.split("=", 1) for line in output.read_text(encoding="utf-8").splitlines() if line
    )
    return proc.returncode, outputs, summary.read_text("utf-8") + proc.stdout + proc.stderr


@pytest.mark.slow
def test_action_gate_on_a_real_api_change(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real dynconform: a baseline of a tiny package, then a breaking change of it."""
    pkg = tmp_path / "src" / "tinypkg"
    pkg.mkdir(parents=True)
    init = pkg / "__init__.py"
    init.write_text(PACKAGE + "def f(x: int) -> int:\n    return x\n\n\ndef g() -> None: ...\n")
    monkeypatch.setenv("DYNCONFORM_CACHE", str(tmp_path / "cache"))
    baseline = ["api", "snapshot", str(tmp_path / "src"), "--package", "tinypkg"]
    assert main([*baseline, "-o", str(tmp_path / "base.json")]) == 0

    init.write_text(PACKAGE + "def f() -> int:\n    return 0\n\n\ndef g() -> None: ...\n")
    rc, outputs, written = _gate(tmp_path, Path(sys.prefix))
    assert rc == 1, written
    assert outputs == {"verdict": "fail", "report": "out/report.json", "markdown": "out/report.md"}
    report = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    assert report["verdict"] == "fail"
    assert "tinypkg.f" in (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    assert "tinypkg.f" in written.partition("::error")[0]  # the summary
    assert "::error" in written  # an annotation


@pytest.mark.parametrize(
    ("mode", "rc", "breaking", "fail_on", "exit", "verdict"),
    [
        ("api", 0, 0, "failure", 0, "pass"),
        ("api", 1, 1, "failure", 1, "fail"),
        ("api", 1, 1, "never", 0, "fail"),
        ("api", 0, 2, "failure", 0, "pass"),
        ("api", 0, 2, "any", 1, "pass"),
        ("api", 2, 0, "never", 2, "error"),
        ("surfaces", 1, 1, "failure", 1, "fail"),
        ("conformance", 0, 0, "any", 0, "pass"),
        ("conformance", 0, 3, "any", 1, "pass"),
        ("conformance", 1, 3, "failure", 1, "fail"),
    ],
)
def test_action_gate_verdicts_and_exit_codes(
    tmp_path: Path, mode: str, rc: int, breaking: int, fail_on: str, exit: int, verdict: str
) -> None:
    inputs = {"MODE": mode, "FAIL_ON": fail_on, "STUB_RC": str(rc), "STUB_BREAKING": str(breaking)}
    code, outputs, written = _gate(tmp_path, _stub_venv(tmp_path), **inputs)
    assert code == exit, written
    assert outputs["verdict"] == verdict
    assert outputs["report"] == "out/report.json"
    if rc > 1:  # the command could not run: nothing to render
        assert "--format markdown" not in written
    if mode == "conformance":
        assert "stub: run --backend reference --report-dir out" in written
        assert "stub: report render out/report.json --format markdown" in written
        assert "stub: report render out/report.json --format html -o out/report.html" in written
    elif mode == "api":
        assert (
            "stub: api check src --baseline base.json --format json -o out/report.json" in written
        )
    else:
        assert "stub: surfaces diff base.json src --format json" in written


def test_action_gate_counts_errored_checks_and_passes_tiers(tmp_path: Path) -> None:
    venv = _stub_venv(tmp_path)
    inputs = {"MODE": "conformance", "FAIL_ON": "any", "STUB_ERRORS": "2"}
    code, outputs, written = _gate(tmp_path, venv, **inputs)
    assert (code, outputs["verdict"]) == (1, "pass"), written
    assert "fail-on any: the report lists failures" in written
    code, _, written = _gate(tmp_path, venv, TIERS="tiers.yaml")
    assert code == 0, written
    assert (
        "stub: api check src --baseline base.json --tiers tiers.yaml --format json "
        "-o out/report.json" in written
    )


def test_action_gate_rejects_bad_inputs(tmp_path: Path) -> None:
    venv = _stub_venv(tmp_path)
    rc, outputs, out = _gate(tmp_path, venv, MODE="lint")
    assert rc == 2
    assert outputs == {}
    assert "mode must be conformance, api or surfaces" in out
    rc, _, out = _gate(tmp_path, venv, BASELINE="")
    assert rc == 2
    assert "needs the baseline input" in out
    rc, _, out = _gate(tmp_path, venv, FAIL_ON="sometimes")
    assert rc == 2
    assert "fail-on must be" in out
