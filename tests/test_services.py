"""Real etcd and NATS servers from the pip wheels: start, answer, stop without leftovers."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from dynconform.services import (
    Lifecycle,
    ServiceError,
    Services,
    check_reachable,
    free_port,
    is_server_url,
    start_nats,
    stop_group,
)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _etcd_put_get(url: str, key: str, value: str) -> str:
    def post(path: str, body: dict[str, str]) -> dict[str, object]:
        request = urllib.request.Request(
            url + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            result: dict[str, object] = json.loads(response.read())
            return result

    b64 = lambda s: base64.b64encode(s.encode()).decode()  # noqa: E731
    post("/v3/kv/put", {"key": b64(key), "value": b64(value)})
    got = post("/v3/kv/range", {"key": b64(key)})
    kvs = got["kvs"]
    assert isinstance(kvs, list)
    return base64.b64decode(kvs[0]["value"]).decode()


@pytest.mark.slow
def test_etcd_and_nats_start_answer_and_stop(tmp_path: Path) -> None:
    with Services(etcd=True, nats=True, workdir=tmp_path) as services:
        etcd, nats = services.started["etcd"], services.started["nats"]
        assert etcd.url.startswith("http://127.0.0.1:")
        assert nats.url.startswith("nats://127.0.0.1:")
        assert _etcd_put_get(etcd.url, "v1/instances/x", "hello") == "hello"
        host, port = nats.url.removeprefix("nats://").split(":")
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            info = json.loads(sock.recv(4096).decode().removeprefix("INFO ").strip())
        assert info["jetstream"] is True
        check_reachable("etcd", etcd.url)
        check_reachable("nats", nats.url)
        pids = [etcd.process.pid, nats.process.pid]
    assert [_pid_alive(pid) for pid in pids] == [False, False]


@pytest.mark.slow
def test_servers_are_stopped_when_the_block_fails(tmp_path: Path) -> None:
    pids: list[int] = []

    def failing_run() -> None:
        with Services(nats=True, workdir=tmp_path) as services:
            pids.append(services.started["nats"].process.pid)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        failing_run()
    assert pids
    assert not _pid_alive(pids[0])


@pytest.mark.slow
def test_temporary_workdir_is_removed(tmp_path: Path) -> None:
    with Services(nats=True) as services:
        workdir = services.workdir
        assert workdir is not None
        assert workdir.is_dir()
    assert not workdir.exists()


def test_unreachable_server_is_a_one_line_error() -> None:
    port = free_port()
    with pytest.raises(ServiceError, match=f"cannot reach etcd at http://127.0.0.1:{port}") as info:
        check_reachable("etcd", f"http://127.0.0.1:{port}")
    assert "\n" not in str(info.value)


@pytest.mark.slow
def test_port_in_use_fails_fast_without_leftovers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        taken = blocker.getsockname()[1]
        monkeypatch.setattr("dynconform.services.free_port", lambda host="127.0.0.1": taken)
        with pytest.raises(ServiceError, match="nats exited at start") as info:
            start_nats(tmp_path, timeout=10)
    assert "\n" not in str(info.value)


def _running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie waiting for its parent is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(") ", 1)[1][0] != "Z"


def _group(script: str) -> tuple[subprocess.Popen[bytes], int]:
    """A shell leading its own process group, and the pid of the ``sleep`` it started."""
    process = subprocess.Popen(["sh", "-c", script], stdout=subprocess.PIPE, start_new_session=True)
    assert process.stdout is not None
    child = int(process.stdout.readline())
    return process, child


def test_stop_group_kills_what_ignores_sigterm_and_what_outlives_the_leader() -> None:
    stubborn, child = _group('trap "" TERM; sleep 60 & echo $!; wait')
    start = time.monotonic()
    stop_group(stubborn, timeout=0.3)
    assert stubborn.returncode is not None
    assert time.monotonic() - start < 5
    orphan_leader, orphan = _group("sleep 60 & echo $!")
    assert orphan_leader.wait(5) == 0
    stop_group(orphan_leader)
    deadline = time.monotonic() + 5
    while (_running(child) or _running(orphan)) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not _running(child)
    assert not _running(orphan)


class _Probe(Lifecycle):
    def __init__(self, fail: bool) -> None:
        self.fail = fail
        self.calls: list[str] = []

    def start(self) -> None:
        self.calls.append("start")
        if self.fail:
            raise ServiceError("cannot start")

    def stop(self) -> None:
        self.calls.append("stop")


def test_lifecycle_stops_after_the_block_and_when_start_fails() -> None:
    with _Probe(fail=False) as probe:
        assert probe.calls == ["start"]
    assert probe.calls == ["start", "stop"]
    failing = _Probe(fail=True)
    with pytest.raises(ServiceError, match="cannot start"), failing:
        pytest.fail("the block must not run")
    assert failing.calls == ["start", "stop"]


@pytest.mark.parametrize(
    ("url", "port", "expected"),
    [
        ("nats://127.0.0.1:4222", True, True),
        ("nats://127.0.0.1", True, False),  # no port
        ("nats://127.0.0.1", False, True),
        ("nats://127.0.0.1:99999", True, False),  # out of range
        ("nats://127.0.0.1:x", True, False),
        ("http://127.0.0.1:4222", True, False),  # another scheme
        ("nats://:4222", True, False),  # no host
        ("127.0.0.1:4222", True, False),
    ],
)
def test_is_server_url(url: str, port: bool, expected: bool) -> None:
    assert is_server_url(url, ("nats",), port=port) is expected
