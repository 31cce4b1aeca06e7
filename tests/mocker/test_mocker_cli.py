"""``dynconform mocker``: listing violation modes, building a model dir, bad input (exit 2 with
one line and no process left) and a served stack stopped by SIGTERM."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from dynconform.cli._common import Parser, UsageError, fail
from dynconform.cli.mocker_cmd import add_mocker
from dynconform.mocker import load_model_dir
from dynconform.mocker.violations import VIOLATIONS

CLI = """
import sys
from dynconform.cli._common import Parser, UsageError, fail
from dynconform.cli.mocker_cmd import add_mocker
parser = Parser(prog="dynconform")
add_mocker(parser.add_subparsers(dest="command", parser_class=Parser))
args = parser.parse_args(sys.argv[1:])
try:
    sys.exit(args.func(args))
except UsageError as exc:
    sys.exit(fail(str(exc)))
"""


def cli(argv: Sequence[str]) -> int:
    """What ``dynconform`` does with ``argv`` (the mocker commands only)."""
    parser = Parser(prog="dynconform")
    add_mocker(parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser))
    args = parser.parse_args(list(argv))
    try:
        code: int = args.func(args)
    except UsageError as exc:
        return fail(str(exc))
    return code


def test_violations_lists_every_mode(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["mocker", "violations"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(VIOLATIONS)
    first = lines[0].split()
    assert VIOLATIONS[first[0]].rule == first[1]


def test_violations_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["mocker", "violations", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["name"]: r["rule"] for r in rows} == {n: m.rule for n, m in VIOLATIONS.items()}


def test_build_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["mocker", "build-model", str(tmp_path / "m")]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "m")
    assert load_model_dir(tmp_path / "m").vocab_size > 256
    assert cli(["mocker", "build-model", str(tmp_path / "m")]) == 2
    assert "already has" in capsys.readouterr().err


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model-dir", "/nonexistent/model"], "model directory not found"),
        (["--violate", "no-such-mode"], "unknown violation mode"),
        (["--violate", "discovery.lease-matches-instance"], "needs --discovery etcd"),
        (
            ["--event-plane", "nats", "--violate", "events.zmq-framing"],
            "needs --event-plane zmq",
        ),
        (["--control-port", "70000"], "--control-port must be between"),
        (["--discovery", "etcd", "--etcd", "http://127.0.0.1:9"], "cannot reach etcd"),
        (["--event-plane", "nats", "--nats", "nats://127.0.0.1:9"], "cannot reach NATS"),
        (["--failure-types", "418"], "unknown failure type"),
        (["--speedup-ratio", "-1"], "must not be negative"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    workdir = tmp_path / "work"
    assert cli(["mocker", "serve", "--port", "0", "--workdir", str(workdir), *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert message in err
    assert not list(workdir.glob("*.log"))


def test_incomplete_model_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{}")
    assert cli(["mocker", "serve", "--port", "0", "--model-dir", str(tmp_path / "m")]) == 2
    assert "is missing tokenizer.json" in capsys.readouterr().err


def test_port_in_use(busy_port: int, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["mocker", "serve", "--port", str(busy_port)]) == 2
    assert f"port {busy_port}" in capsys.readouterr().err


def test_invalid_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli(["mocker", "serve", "--workers", "0"])
    assert exc.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1


@pytest.mark.slow
def test_serve_stops_on_sigterm(tmp_path: Path) -> None:
    ready = tmp_path / "ready.json"
    argv = ["mocker", "serve", "--port", "0", "--speedup-ratio", "0"]
    process = subprocess.Popen(
        [sys.executable, "-c", CLI, *argv, "--ready-file", str(ready)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            assert time.monotonic() < deadline
            time.sleep(0.05)
        info = json.loads(ready.read_text())
        pids = [info["frontend"]["pid"], *(w["pid"] for w in info["workers"])]
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
        output = process.stdout.read().decode() if process.stdout else ""
        assert info["frontend"]["url"] in output
        for pid in pids:
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        if ready.exists():  # children run in their own process groups
            info = json.loads(ready.read_text())
            for pid in [info["frontend"]["pid"], *(w["pid"] for w in info["workers"])]:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
