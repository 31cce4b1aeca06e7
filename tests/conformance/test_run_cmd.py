from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from conformance_helpers import assert_no_process_left

from dynconform.cli import main
from dynconform.reports import load_report
from dynconform.services import free_port


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_checks_list_and_show(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "checks", "list")
    assert code == 0
    assert "http.stream.done-terminator" in out
    assert "[needs discovery-tap]" in out
    code, out, _ = run(capsys, "checks", "list", "--profile", "streaming", "--json")
    rows = json.loads(out)
    assert {r["id"] for r in rows} >= {"http.stream.done-terminator"}
    assert all("streaming" in r["profiles"] for r in rows)
    code, out, _ = run(capsys, "checks", "show", "kv.stored.hash-matches-prompt")
    assert code == 0
    assert "MUST" in out
    assert "kv.block-hash-chain" in out
    code, _, err = run(capsys, "checks", "show", "no.such-check")
    assert code == 2
    assert "unknown check" in err


def test_dry_run_dynamo_prints_processes_ports_and_env(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "run", "--backend", "dynamo", "--dynamo-version", "1.6.1", "--dry-run"
    )
    assert code == 0
    worker = next(line for line in out.splitlines() if line.startswith("process worker-0"))
    port = int(worker.split("DYN_SYSTEM_PORT=")[1].split()[0])
    assert port < 32768
    assert "-m dynamo.mocker" in worker
    assert "DYN_FILE_KV=" in worker
    assert "-m dynamo.frontend" in out
    assert "--event-plane zmq" in out
    code, out, _ = run(
        capsys, "run", "--backend", "dynamo", "--sut-python", "/py", "--topology", "etcd-nats",
        "--dry-run",
    )  # fmt: skip
    assert "ETCD_ENDPOINTS=" in out
    assert "--request-plane nats" in out
    assert "etcd and nats-server start first" in out


def test_dry_run_engine_backends(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(
        capsys, "run", "--backend", "vllm", "--model-path", str(tmp_path), "--sut-python",
        "/opt/py", "--dry-run",
    )  # fmt: skip
    assert code == 0
    assert f"/opt/py -m dynamo.vllm --model {tmp_path}" in out
    code, out, _ = run(capsys, "run", "--target", "http://127.0.0.1:9", "--dry-run")
    assert "nothing is started" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--backend", "vllm"], "needs --model-path"),
        (["--backend", "dynamo", "--violate", "kv.block-hash-chain"], "reference backend"),
        (["--timeout", "bogus=1"], "unknown timeout"),
        (["--profile", "nope"], "unknown profile"),
        (["--check", "no.such-check"], "unknown check"),
        (["--discovery", "etcd://x:1"], "need --target"),
        (["--target", "http://x", "--feature", "flying"], "unknown feature"),
        (["--target", "notaurl"], "--target 'notaurl': expected http://HOST:PORT"),
        (["--target", ""], "--target '': expected http://HOST:PORT"),
        (["--target", "http://x", "--worker-url", "x:1"], "--worker-url 'x:1': expected"),
        (["--backend", "vllm", "--model-path", "/m"], "needs --dynamo-version VERSION"),
        (["--backend", "dynamo", "--dry-run"], "needs --dynamo-version VERSION"),
        (["--check", "kv.block-hash-chain", "--profile", "core"], "not in the profiles selected"),
        (["--violate", "nope"], "--violate nope: unknown"),
        (["--target", "http://x", "--backend", "dynamo"], "--backend only apply to a deployment"),
        (["--target", "http://x", "--topology", "etcd-nats"], "--topology only apply"),
        (["--target", "http://x", "--dynamo-version", "1.6.1"], "--dynamo-version only apply"),
        (["--dynamo-version", "1.6.1"], "apply to a real backend"),
        (["--backend", "dynamo", "--dynamo-version", "1", "--sut-python", "/p"], "not both"),
        (["--target", "http://x", "--discovery", "file:///no/such/dir"], "is not a directory"),
        (["--target", "http://x", "--discovery", "etcd://x"], "expected etcd://HOST:PORT"),
        (["--target", "http://x", "--discovery", "redis://x"], "expected file:///DIR"),
    ],
)
def test_usage_errors(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    code, _, err = run(capsys, "run", *argv)
    assert code == 2
    assert message in err
    assert err.count("\n") == 1


def test_engine_without_gpu_fails_fast(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(
        capsys, "run", "--backend", "sglang", "--model-path", str(tmp_path),
        "--sut-python", sys.executable, "--quiet", "--report-dir", str(tmp_path / "r"),
    )  # fmt: skip
    assert code == 2
    assert "needs a CUDA GPU machine with the sglang engine" in err


def test_dynamo_needs_an_environment(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "run", "--backend", "dynamo", "--quiet")
    assert code == 2
    assert "--dynamo-version VERSION or --sut-python PATH" in err


@pytest.mark.slow
def test_run_on_the_reference(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    report_dir = tmp_path / "report"
    code, out, _ = run(capsys, "run", "--report-dir", str(report_dir), "--profile", "streaming")
    assert code == 0
    assert "PASS  http.stream.done-terminator" in out
    assert "-> PASSED" in out
    report = load_report(report_dir / "report.json")
    assert {c.status for c in report.checks} == {"passed"}
    assert [p.name for p in report.profiles] == ["streaming"]
    summary = (report_dir / "summary.md").read_text()
    assert summary.startswith("## dynconform conformance: PASSED")
    page = (report_dir / "report.html").read_text()
    assert "http.stream.done-terminator" in page
    assert_no_process_left(str(report_dir))


@pytest.mark.slow
def test_run_with_a_violation_fails(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(
        capsys, "run", "--violate", "http.sse.done-terminator", "--profile", "streaming",
        "--quiet", "--json", "--report-dir", str(tmp_path),
    )  # fmt: skip
    assert code == 1
    data = json.loads(out)
    failed = [c["id"] for c in data["checks"] if c["status"] == "failed"]
    assert failed == ["http.stream.done-terminator"]
    assert data["implementation"]["details"]["violations"] == "http.sse.done-terminator"
    assert_no_process_left(str(tmp_path))


def test_unusable_paths_are_refused_before_anything_starts(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("x")
    garbage = tmp_path / "expect.yaml"
    garbage.write_text("deviations: [unclosed\n")
    not_executable = tmp_path / "python"
    not_executable.write_text("")
    cases = [
        (["--report-dir", str(a_file)], f"--report-dir {a_file}: {a_file} is not a directory"),
        (["--report-dir", str(a_file / "r")], f"{a_file} is not a directory"),
        (["--expectations", str(garbage)], "expect.yaml:2:1: while parsing a flow sequence"),
        (["--expectations", str(tmp_path / "missing.yaml")], "missing.yaml"),
        (
            ["--backend", "dynamo", "--sut-python", str(not_executable), "--quiet"],
            "not an executable file",
        ),
    ]
    for argv, message in cases:
        code, _, err = run(capsys, "run", *argv)
        assert code == 2, argv
        assert message in err, (argv, err)
        assert err.count("\n") == 1, err
    assert_no_process_left(str(tmp_path))


def test_a_failed_start_prints_only_dynconform_lines(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    argv = ["--target", url, "--timeout", "startup=0.5", "--check", "http.chat.valid"]
    code, out, err = run(capsys, "run", *argv)
    assert code == 2
    assert out == f"dynconform: starting {url}\n"  # no pytest banner or summary
    assert err == f"dynconform: error: {url}/v1/models did not list a model within 0.5 s\n"
