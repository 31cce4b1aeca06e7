"""The reference and real ai-dynamo, mixed: the real frontend in front of the reference
worker, and the reference frontend in front of the real ``dynamo.mocker`` worker, both with
file discovery, the TCP request plane and direct-ZMQ events.

Not part of the default run: it provisions ai-dynamo from PyPI into the user cache (once).
Run it with::

    DYNCONFORM_DYNAMO_VERSION=1.6.1 .venv/bin/pytest tests/mocker/test_live_interop.py
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dynconform.conformance._launch import free_port, free_system_port, wait_for_model
from dynconform.conformance._process import ManagedProcess, ProcessSpec
from dynconform.conformance._provision import provision_dynamo
from dynconform.contracts import Validator
from dynconform.mocker.discovery import read_file_store
from dynconform.mocker.event_plane import EventMessage, zmq_messages
from dynconform.mocker.request_plane import RequestPlaneClient

VERSION = os.environ.get("DYNCONFORM_DYNAMO_VERSION", "")

pytestmark = [
    pytest.mark.real_dynamo,
    pytest.mark.slow,
    pytest.mark.skipif(not VERSION, reason="set DYNCONFORM_DYNAMO_VERSION to run real Dynamo"),
]

PROMPT = "hello there, how are you doing today my friend? tell me a long story about a cat"
#: What a 1.6.1 frontend logs when a worker's request plane or events do not match its own.
INCOMPATIBLE = re.compile(
    r"malformed prologue|rejected an envelope|connection_failed|cannot_connect|"
    r"Failed to parse discovery instance|Failed to decode|malformed control message|"
    r"payload_decode|Dropping .*envelope"
)
PLANES = ["--discovery-backend", "file", "--request-plane", "tcp", "--event-plane", "zmq"]


@contextlib.contextmanager
def _processes(tmp: Path) -> Iterator[Callable[[str, list[str], dict[str, str]], ManagedProcess]]:
    """A function that starts a process in ``tmp`` (its log there); all stop at the end."""
    started: list[ManagedProcess] = []

    def start(name: str, argv: list[str], env: dict[str, str]) -> ManagedProcess:
        started.append(ManagedProcess(ProcessSpec(name, tuple(argv), env, cwd=tmp), tmp))
        return started[-1]

    try:
        yield start
    finally:
        for proc in reversed(started):
            proc.stop()


def _log(proc: ManagedProcess) -> str:
    """A process's log without its ANSI colours."""
    text = proc.log_path.read_text(encoding="utf-8", errors="replace")
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


@pytest.fixture(scope="module")
def real_python() -> Path:
    return provision_dynamo(VERSION)


def _env(tmp: Path) -> dict[str, str]:
    return {"DYN_LOG": "info", "DYN_HTTP_HOST": "127.0.0.1", "DYN_FILE_KV": str(tmp / "kv")}


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return str(response.read().decode())


def _post(url: str, body: dict[str, Any]) -> tuple[int, str]:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _sse(text: str) -> list[dict[str, Any]]:
    lines = [line[6:] for line in text.splitlines() if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    return [json.loads(line) for line in lines[:-1]]


def _exercise(url: str) -> dict[str, Any]:
    """Chat and completions, streamed and not; every answer is a success."""
    chat = {"model": "tiny", "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 5}
    completion = {"model": "tiny", "prompt": PROMPT, "max_tokens": 4}
    out: dict[str, Any] = {}
    for name, path, body in (
        ("chat", "/v1/chat/completions", chat),
        ("chat_stream", "/v1/chat/completions", chat | {"stream": True}),
        ("completion", "/v1/completions", completion),
        ("completion_stream", "/v1/completions", completion | {"stream": True}),
    ):
        status, text = _post(url + path, body)
        assert status == 200, (name, text)
        out[name] = _sse(text) if body.get("stream") else json.loads(text)
    assert out["chat"]["choices"][0]["finish_reason"] == "length"
    assert out["chat"]["usage"]["completion_tokens"] == 5
    assert out["completion"]["usage"]["completion_tokens"] == 4
    assert out["chat_stream"][-1]["choices"][0]["finish_reason"] == "length"
    assert out["completion_stream"][-1]["choices"][0]["finish_reason"] == "length"
    return out


def _metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{key}="{value}"' in line for key, value in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _eventually(what: str, predicate: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def test_real_frontend_serves_through_the_reference_worker(
    tmp_path: Path, tiny_model_path: Path, real_python: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with _processes(tmp_path) as start:
        worker = start(
            "worker",
            [
                sys.executable, "-m", "dynconform.mocker.worker",
                "--model-path", str(tiny_model_path), "--model-name", "tiny",
                "--discovery-backend", "file", "--file-kv", str(tmp_path / "kv"),
                "--event-plane", "zmq", "--speedup-ratio", "0",
                "--ready-file", str(tmp_path / "worker.json"),
            ],
            {},
        )  # fmt: skip
        frontend = start(
            "frontend",
            [
                str(real_python), "-m", "dynamo.frontend", "--http-host", "127.0.0.1",
                "--http-port", str(port), "--router-mode", "kv", *PLANES,
            ],
            _env(tmp_path),
        )  # fmt: skip
        wait_for_model(url, "tiny", 120.0, [worker, frontend])
        _exercise(url)

        def metrics() -> str:
            return _get(url + "/metrics")

        applied = "dynamo_component_kv_cache_events_applied"
        _eventually(
            "the router applied the reference's stored KV events",
            lambda: _metric(metrics(), applied, event_type="stored", status="ok") > 0,
        )
        # a KV-routed repeat: the router finds the prompt's blocks on the worker
        chat = {"model": "tiny", "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 3}
        status, text = _post(url + "/v1/chat/completions", chat)
        assert status == 200, text
        assert json.loads(text)["usage"]["prompt_tokens_details"]["cached_tokens"] > 0
        final = metrics()
        prefix = "dynamo_component_router_kv_best_eligible_cached_prefix_tokens_total"
        assert _metric(final, prefix) > 0
        active = "dynamo_component_router_active_sequence_ingress_events_applied_total"
        assert _metric(final, active) > 0
        errors = "dynamo_component_router_active_sequence_zmq_ingress_payload_decode_errors_total"
        assert _metric(final, errors) == 0
        assert _metric(final, "dynamo_component_kv_cache_event_warnings") == 0
        log = _log(frontend)
        assert not INCOMPATIBLE.findall(log), INCOMPATIBLE.findall(log)[:5]
        assert " ERROR " not in log
        # the worker counted the five generate requests, not the router's KV state query
        system = json.loads((tmp_path / "worker.json").read_text())["system_url"]
        worker_metrics = _get(system + "/metrics")
        assert _metric(worker_metrics, "dynamo_component_requests_total") == 5
        assert _metric(worker_metrics, "dynamo_component_inflight_requests") == 0


async def _listen(disc: Path, seen: list[EventMessage]) -> None:
    """Collect the events of every channel in discovery until cancelled."""
    endpoints = [
        entry["value"]["transport"]["config"]["endpoint"]
        for entry in read_file_store(disc)
        if entry["value"].get("type") == "EventChannel"
    ]
    scope = "namespace.dynamo.component.backend.endpoint.generate"
    async for message in zmq_messages(endpoints, scope):
        seen.append(message)


async def _kill_one(disc: Path) -> int:
    """Send one long request straight to the real worker, read 3 items, then cancel it."""
    (entry,) = [
        e["value"] for e in read_file_store(disc)
        if e["value"].get("type") == "Endpoint" and e["value"]["endpoint"] == "generate"
    ]  # fmt: skip
    address, _, path = entry["transport"]["tcp"].partition("/")
    client = RequestPlaneClient()
    await client.start()
    body = {
        "model": "tiny",
        "token_ids": list(range(1, 40)),
        "stop_conditions": {"max_tokens": 3000, "ignore_eos": True},
        "sampling_options": {},
        "output_options": {},
        "eos_token_ids": [2],
        "annotations": [],
        "routing": None,
    }
    count = 0
    try:
        outputs = client.generate(address, path, "live-interop-kill", body)
        async with contextlib.aclosing(outputs):
            async for _ in outputs:
                count += 1
                if count == 3:
                    break
        await asyncio.sleep(1.0)
    finally:
        await client.close()
    return count


def _disconnect_mid_stream(url: str) -> None:
    """Start a long streamed completion, read the response head, and hang up."""
    host, port = url.removeprefix("http://").split(":")
    body = json.dumps(
        {"model": "tiny", "prompt": "the quick brown fox", "max_tokens": 400,
         "ignore_eos": True, "stream": True}
    ).encode()  # fmt: skip
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")


def test_reference_frontend_serves_through_the_real_worker(
    tmp_path: Path, tiny_model_path: Path, real_python: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    disc = tmp_path / "kv"
    with _processes(tmp_path) as start:
        worker = start(
            "worker",
            [
                str(real_python), "-m", "dynamo.mocker", "--model-path", str(tiny_model_path),
                "--model-name", "tiny", "--block-size", "16", "--speedup-ratio", "1", *PLANES,
            ],
            _env(tmp_path) | {"DYN_SYSTEM_PORT": str(free_system_port())},
        )  # fmt: skip
        frontend = start(
            "frontend",
            [
                sys.executable, "-m", "dynconform.mocker.frontend", "--http-host", "127.0.0.1",
                "--http-port", str(port), "--discovery-backend", "file", "--file-kv", str(disc),
            ],
            {},
        )  # fmt: skip
        wait_for_model(url, "tiny", 120.0, [worker, frontend])

        async def scenario() -> tuple[list[EventMessage], int]:
            seen: list[EventMessage] = []
            listener = asyncio.create_task(_listen(disc, seen))
            await asyncio.sleep(1.0)  # the subscriptions reach the publishers
            await asyncio.to_thread(_exercise, url)
            await asyncio.to_thread(_disconnect_mid_stream, url)
            killed = await _kill_one(disc)
            await asyncio.sleep(0.5)
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
            return seen, killed

        seen, killed = asyncio.run(scenario())
        assert killed == 3
        log = _log(worker)
        cancelled = r'request cancellation received.*"live-interop-kill".*signal="kill"'
        assert re.search(cancelled, log), log[-3000:]
        # the HTTP client that hung up mid-stream got its request cancelled too, although
        # the real worker's tokens decode to no text (nothing was written to notice it by)
        assert len(re.findall(r'request cancellation received.*signal="kill"', log)) >= 2
        assert not INCOMPATIBLE.findall(log), INCOMPATIBLE.findall(log)[:5]

    # the reference consumes the real worker's events, and they satisfy the contracts
    topics = {message.subject.rsplit(".", 1)[1] for message in seen}
    assert {"kv-events", "active_sequences_events", "kv_metrics"} <= topics
    report = Validator().validate_stream("events.message", [m.view() for m in seen])
    assert report.ok, [str(v) for v in report.violations[:5]]
    active = [
        m.view()["decoded"]["payload"]["__msgpack__"]
        for m in seen
        if m.subject.endswith("active_sequences_events")
    ]
    assert all(set(payload) == {"events"} for payload in active)
