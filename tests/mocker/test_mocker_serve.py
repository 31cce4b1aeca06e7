"""``dynconform mocker serve`` as processes, both topologies, with real etcd and NATS; fault
injection; the violation modes that need etcd or NATS."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from reference_helpers import CHAT, capturing, reference
from test_mocker_violations import assert_only, observe

from dynconform.contracts import Validator
from dynconform.mocker.discovery import EtcdClient, read_file_store
from dynconform.mocker.serve import MockerStack, ServeOptions, describe
from dynconform.mocker.violations import VIOLATIONS
from dynconform.services import Services

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def services() -> Iterator[Services]:
    with Services(etcd=True, nats=True) as running:
        yield running


@pytest.fixture(scope="module")
def validator() -> Validator:
    return Validator()


def _post(url: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _pids(info: dict[str, Any]) -> list[int]:
    return [info["frontend"]["pid"], *(w["pid"] for w in info["workers"])]


def _wait_gone(pids: list[int], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [p for p in pids if _alive(p)]


def test_serve_file_zmq(tmp_path: Path, validator: Validator) -> None:
    ready = tmp_path / "ready.json"
    options = ServeOptions(
        workers=2, port=0, speedup_ratio=0, record_requests=True, ready_file=ready
    )
    with MockerStack(options) as stack:
        info = json.loads(ready.read_text())
        assert info == stack.info
        url = info["frontend"]["url"]
        for i in range(4):
            status, body = _post(url + "/v1/completions", {"model": "tiny", "prompt": f"hi {i}"})
            assert status == 200, body
        entries = read_file_store(Path(info["discovery"]["path"]))
        report = validator.validate_stream("discovery.entry", entries)
        assert report.ok, [str(v) for v in report.violations[:3]]
        assert report.checked["discovery.mdc"] == 2
        for worker in info["workers"]:  # round-robin reached both workers
            frames = Path(worker["requests"]).read_text().splitlines()
            assert len(frames) == 2
            metrics = _get(worker["system_url"] + "/metrics")
            assert validator.validate("metrics.worker-exposition", metrics).ok
        pids = _pids(info)
    _wait_gone(pids)
    assert not Path(info["workdir"]).exists()


def test_serve_etcd_nats_and_sigkill(
    tmp_path: Path, services: Services, validator: Validator
) -> None:
    options = ServeOptions(
        workers=2,
        port=0,
        speedup_ratio=0,
        discovery="etcd",
        event_plane="nats",
        etcd_url=services.url("etcd"),
        nats_url=services.url("nats"),
        lease_ttl=2,
    )

    async def records() -> list[dict[str, Any]]:
        client = EtcdClient(services.url("etcd"))
        try:
            return await client.range_prefix("v1/")
        finally:
            await client.close()

    with MockerStack(options) as stack:
        info = stack.info
        entries = asyncio.run(records())
        report = validator.validate_stream("discovery.entry", entries)
        assert report.ok, [str(v) for v in report.violations[:3]]
        victim = info["workers"][0]
        assert {e["key"] for e in entries} >= set(victim["keys"])
        assert {e["lease"] for e in entries if e["key"] in victim["keys"]} == {
            str(victim["instance_id"])
        }
        os.kill(victim["pid"], signal.SIGKILL)
        killed = time.monotonic()
        while set(victim["keys"]) & {e["key"] for e in asyncio.run(records())}:
            assert time.monotonic() - killed < options.lease_ttl + 3, "keys outlived the lease"
            time.sleep(0.2)
        # the surviving worker still serves; a request may hit the dead one first
        url = info["frontend"]["url"]
        for _ in range(3):
            status, body = _post(url + "/v1/chat/completions", CHAT)
            assert status == 200, body
        pids = _pids(info)
    _wait_gone(pids)
    assert asyncio.run(records()) == []


def test_events_over_nats_validate(
    tmp_path: Path, tiny_model_path: Path, services: Services, validator: Validator
) -> None:
    async def main() -> tuple[list[Any], list[dict[str, Any]]]:
        async with reference(
            tmp_path,
            tiny_model_path,
            discovery="etcd",
            etcd_url=services.url("etcd"),
            event_plane="nats",
            nats_url=services.url("nats"),
        ) as ref:
            async with capturing(ref) as messages:
                await ref.workload()
            return [m.view() for m in messages], await ref.records()

    views, entries = asyncio.run(main())
    report = validator.validate_stream("events.message", views)
    assert report.ok, [str(v) for v in report.violations[:3]]
    assert report.checked["events.kv-events"] > 0
    assert {v["subject"].rsplit(".", 1)[1] for v in views} >= {"kv-events", "kv_metrics"}
    channels = [e["value"] for e in entries if e["value"]["type"] == "EventChannel"]
    assert {c["transport"]["kind"] for c in channels} == {"Nats"}


@pytest.mark.parametrize(
    "name", sorted(n for n, m in VIOLATIONS.items() if {"etcd", "nats"} & set(m.needs))
)
def test_violation_modes_needing_servers(
    name: str, tmp_path: Path, tiny_model_path: Path, services: Services, validator: Validator
) -> None:
    mode = VIOLATIONS[name]

    async def main() -> Any:
        async with reference(
            tmp_path,
            tiny_model_path,
            violations=(name,),
            discovery="etcd",
            etcd_url=services.url("etcd"),
            event_plane="nats",
            nats_url=services.url("nats"),
        ) as ref:
            return await observe(ref, mode, validator)

    assert_only(asyncio.run(main()), mode)


def test_crashed_worker_is_routed_around(tmp_path: Path) -> None:
    options = ServeOptions(workers=2, port=0, speedup_ratio=0, crash_after_tokens=3)
    with MockerStack(options) as stack:
        url = stack.info["frontend"]["url"]
        statuses = [_post(url + "/v1/chat/completions", CHAT)[0] for _ in range(6)]
        assert stack.children[0].process.poll() == 3  # worker 0 exited abruptly
        assert statuses.count(500) <= 1
        assert statuses[-3:] == [200, 200, 200]


def test_injected_faults(tmp_path: Path, tiny_model_path: Path, validator: Validator) -> None:
    async def main() -> list[tuple[int, str]]:
        async with reference(tmp_path, tiny_model_path) as ref:
            out = []
            for fault in ("429", "500", "503", "context_length"):
                headers = {"x-dynconform-fault": fault}
                out.append(await ref.post("/v1/chat/completions", CHAT, headers=headers))
            return out

    results = asyncio.run(main())
    assert [status for status, _ in results] == [429, 500, 503, 400]
    for _, text in results:
        assert validator.validate("http.error", json.loads(text)).ok


def test_failure_rate(tmp_path: Path, tiny_model_path: Path) -> None:
    options = {"failure_rate": 1.0, "failure_types": ("503",), "seed": 1}

    async def main() -> list[int]:
        async with reference(tmp_path, tiny_model_path, frontend_options=options) as ref:
            return [(await ref.post("/v1/chat/completions", CHAT))[0] for _ in range(3)]

    assert asyncio.run(main()) == [503, 503, 503]


def test_stalled_stream(tmp_path: Path, tiny_model_path: Path) -> None:
    async def main() -> str:
        async with reference(
            tmp_path, tiny_model_path, worker_options={"stall_after_tokens": 2}
        ) as ref:
            received = b""
            body = CHAT | {"stream": True, "max_tokens": 8}
            async with ref.session.post(ref.frontend.url + "/v1/chat/completions", json=body) as r:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(1.0):
                        async for chunk in r.content.iter_any():
                            received += chunk
            return received.decode()

    text = asyncio.run(main())
    assert '"role":"assistant"' in text
    assert "[DONE]" not in text


def _control(url: str, method: str = "POST") -> tuple[int, Any]:
    request = urllib.request.Request(url, data=b"" if method == "POST" else None, method=method)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_control_endpoint_kills_and_restarts_a_worker(tmp_path: Path) -> None:
    ready = tmp_path / "ready.json"
    options = ServeOptions(port=0, speedup_ratio=0, lease_ttl=2, ready_file=ready)
    with MockerStack(options) as stack:
        control = stack.info["control"]["url"]
        assert control.startswith("http://127.0.0.1:")
        assert any(line.startswith("control ") for line in describe(stack.info))
        old = stack.info["workers"][0]
        assert _control(f"{control}/workers/0/kill") == (
            200,
            {"worker": 0, "pid": old["pid"], "exit": -signal.SIGKILL},
        )
        assert not _alive(old["pid"])
        status, workers = _control(f"{control}/workers", "GET")
        assert status == 200
        assert workers[0]["alive"] is False
        status, new = _control(f"{control}/workers/0/restart")
        assert status == 200, new
        assert new["pid"] != old["pid"]
        assert new["instance_id"] != old["instance_id"]
        assert json.loads(ready.read_text())["workers"][0] == new
        url = stack.info["frontend"]["url"]
        deadline = time.monotonic() + 15
        while _post(url + "/v1/chat/completions", CHAT)[0] != 200:
            assert time.monotonic() < deadline, "the restarted worker does not serve"
            time.sleep(0.2)
        assert _control(f"{control}/workers/3/restart")[0] == 404
        assert _control(f"{control}/nothing")[0] == 404
        pids = _pids(stack.info)
    _wait_gone(pids)
    with pytest.raises(urllib.error.URLError):
        _control(f"{control}/workers", "GET")
