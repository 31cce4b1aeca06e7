"""``dynconform mocker``: listing violation modes, building a model dir, bad input (exit 2 with
one line, before anything starts) and a served stack stopped by a signal, once ready or while
starting."""

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
from typing import Any

import pytest

import dynconform.mocker.serve as serve_module
from dynconform.cli._common import Parser, UsageError, fail
from dynconform.cli.mocker_cmd import add_mocker
from dynconform.mocker import load_model_dir
from dynconform.mocker.serve import (
    MockerStack,
    ServeError,
    ServeOptions,
    _Child,
    check_options,
)
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


@pytest.fixture
def nothing_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Starting a process or a server for the stack fails the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the stack started a process")

    monkeypatch.setattr(MockerStack, "_spawn", refuse)
    monkeypatch.setattr(serve_module, "Services", refuse)


@pytest.mark.usefixtures("nothing_starts")
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
        (["--discovery", "etcd", "--etcd", "http://127.0.0.1:9"], "cannot reach etcd"),
        (["--event-plane", "nats", "--nats", "nats://127.0.0.1:9"], "cannot reach NATS"),
        (["--failure-types", "418"], "unknown failure type"),
        (["--ready-file", "{tmp}"], "--ready-file {tmp} is a directory"),
        (["--ready-file", "{tmp}/no/ready.json"], "directory {tmp}/no does not exist"),
        (["--workdir", "{tmp}/file"], "--workdir {tmp}/file is not a directory"),
        (["--etcd", "bogus"], "--etcd is only used with --discovery etcd: add it"),
        (["--nats", "nats://127.0.0.1:9"], "--nats is only used with --event-plane nats: add"),
        (
            ["--discovery", "etcd", "--etcd", "bogus"],
            "--etcd must be a URL like http://127.0.0.1:2379, got 'bogus'",
        ),
        (
            ["--event-plane", "nats", "--nats", "127.0.0.1:4222"],
            "--nats must be a URL like nats://127.0.0.1:4222",
        ),
        (["--lease-ttl", "-3"], "--lease-ttl must be at least 1 second, got -3"),
        (["--lease-ttl", "0"], "--lease-ttl must be at least 1 second, got 0"),
        (["--crash-after-tokens", "-1"], "--crash-after-tokens must be at least 1, got -1"),
        (["--stall-after-tokens", "0"], "--stall-after-tokens must be at least 1, got 0"),
        (["--startup-time", "-1"], "--startup-time must be a finite number, 0 or more"),
        (["--startup-time", "inf"], "--startup-time must be a finite number, 0 or more"),
        (["--speedup-ratio", "nan"], "--speedup-ratio must be a finite number, 0 or more"),
        (["--speedup-ratio", "inf"], "--speedup-ratio must be a finite number, 0 or more"),
        (["--speedup-ratio", "-1"], "--speedup-ratio must be a finite number, 0 or more"),
        (["--failure-rate", "nan"], "--failure-rate must be between 0 and 1, got nan"),
        (["--failure-rate", "1.5"], "--failure-rate must be between 0 and 1, got 1.5"),
        (["--model-name", ""], "--model-name must not be empty"),
        (["--model-name", "  "], "--model-name must not be empty"),
        (["--block-size", "1"], "--block-size must be at least 2, got 1"),
        (["--num-gpu-blocks", "0"], "--num-gpu-blocks must be positive, got 0"),
        (["--port", "70000"], "--port must be between 0 and 65535, got 70000"),
        (["--control-port", "70000"], "--control-port must be between 0 and 65535"),
        (["--control-port", "-1"], "--control-port must be between 0 and 65535, got -1"),
        (["--workers", "0"], "--workers must be at least 1, got 0"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    workdir = tmp_path / "work"
    (tmp_path / "file").write_text("")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    assert cli(["mocker", "serve", "--port", "0", "--workdir", str(workdir), *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("dynconform: error: ")
    assert message.replace("{tmp}", str(tmp_path)) in err
    assert not list(workdir.glob("*.log"))


@pytest.mark.usefixtures("nothing_starts")
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["serve", "--speedup-ratio", "fast"], "argument --speedup-ratio: invalid float value"),
        (["serve", "--lease-ttl", "x"], "argument --lease-ttl: invalid int value"),
        (["serve", "--failure-types", ","], "argument --failure-types: must name at least one"),
        (["serve", "--model-dir", ""], "argument --model-dir: an empty string is not a path"),
        (["serve", "--ready-file", ""], "argument --ready-file: an empty string is not a path"),
        (["serve", "--workdir", ""], "argument --workdir: an empty string is not a path"),
        (["build-model", ""], "argument dir: an empty string is not a path"),
        (["build-model", "m", "--vocab-size", "5"], "argument --vocab-size: must be at least"),
        (["build-model", "m", "--vocab-size", "x"], "argument --vocab-size: must be an integer"),
        (["build-model", "m", "--context-length", "0"], "argument --context-length: must be at"),
    ],
)
def test_bad_values_are_parse_errors(
    args: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        cli(["mocker", *args])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert message in err
    assert not list(tmp_path.iterdir())  # build-model "" would write into the cwd


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"lease_ttl": -3}, "--lease-ttl must be at least 1 second, got -3"),
        ({"crash_after_tokens": -1}, "--crash-after-tokens must be at least 1, got -1"),
        ({"stall_after_tokens": 0}, "--stall-after-tokens must be at least 1, got 0"),
        ({"startup_time": -1.0}, "--startup-time must be a finite number, 0 or more"),
        ({"startup_time": float("nan")}, "--startup-time must be a finite number, 0 or more"),
        ({"speedup_ratio": float("nan")}, "--speedup-ratio must be a finite number, 0 or more"),
        ({"speedup_ratio": float("inf")}, "--speedup-ratio must be a finite number, 0 or more"),
        ({"model_name": ""}, "--model-name must not be empty"),
        ({"etcd_url": "http://127.0.0.1:2379"}, "--etcd is only used with --discovery etcd"),
        ({"nats_url": "nats://127.0.0.1:4222"}, "--nats is only used with --event-plane nats"),
    ],
)
def test_check_options_rejects_bad_values(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ServeError) as exc:
        check_options(ServeOptions(port=0, **options))
    assert str(exc.value).startswith(message)


def test_incomplete_model_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{}")
    assert cli(["mocker", "serve", "--port", "0", "--model-dir", str(tmp_path / "m")]) == 2
    assert "is missing tokenizer.json" in capsys.readouterr().err


def test_port_in_use(busy_port: int, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["mocker", "serve", "--port", str(busy_port)]) == 2
    assert f"port {busy_port}" in capsys.readouterr().err


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


def _processes_mentioning(text: str) -> list[int]:
    """Pids of the processes whose command line contains ``text``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            with contextlib.suppress(OSError):
                if text.encode() in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
    return pids


@pytest.mark.slow
@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["INT", "TERM"]
)
def test_signal_while_starting_stops_everything(tmp_path: Path, signum: int, code: int) -> None:
    workdir, ready = tmp_path / "work", tmp_path / "ready.json"
    argv = ["mocker", "serve", "--port", "0", "--startup-time", "60", "--speedup-ratio", "0"]
    argv += ["--workdir", str(workdir), "--ready-file", str(ready)]
    process = subprocess.Popen(
        [sys.executable, "-m", "dynconform", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not _processes_mentioning(str(workdir / "worker-0.ready.json")):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "worker 0 was not started"
            time.sleep(0.05)
        process.send_signal(signum)
        out, err = process.communicate(timeout=20)  # worker 0 takes 60 s to start
        assert process.returncode == code, err
        assert b"ready" not in out
        assert err.decode() == "dynconform: interrupted while the stack was starting; stopped it\n"
        assert not ready.exists()
        assert _processes_mentioning(str(workdir)) == []
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        for pid in _processes_mentioning(str(workdir)):  # children run in their own groups
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)


WRITES_READY_FILE = """
import json, os, sys, time
time.sleep(float(sys.argv[2]))
open(sys.argv[1], "w").write(json.dumps({"pid": os.getpid()}))
time.sleep(60)
"""


@pytest.mark.parametrize(("name", "ready"), [("worker-0", True), ("worker-1", False)])
def test_worker_0_gets_its_startup_time_on_top_of_the_timeout(
    tmp_path: Path, name: str, ready: bool
) -> None:
    stack = MockerStack(ServeOptions(timeout=0.5, startup_time=2.0))
    ready_file = tmp_path / f"{name}.ready.json"
    process = subprocess.Popen(  # ready after 1 s
        [sys.executable, "-c", WRITES_READY_FILE, str(ready_file), "1"],
        start_new_session=True,
    )
    child = _Child(name, process, tmp_path / "log", ready_file, "unused", [])
    try:
        if ready:
            assert stack._wait_ready(child)["pid"] == child.process.pid
        else:
            with pytest.raises(ServeError, match=r"worker-1 did not become ready within 0\.5 s"):
                stack._wait_ready(child)
    finally:
        child.kill()
