"""Run the reference (worker + frontend) in-process and capture everything it emits."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from dynconform.mocker import EngineConfig
from dynconform.mocker.discovery import EtcdClient, read_file_store
from dynconform.mocker.event_plane import EventMessage, zmq_messages
from dynconform.mocker.frontend import Frontend, FrontendConfig
from dynconform.mocker.violations import VIOLATIONS
from dynconform.mocker.worker import Worker, WorkerConfig

#: Small KV cache (16 blocks of 4 tokens) so that a short workload evicts blocks.
ENGINE = EngineConfig(block_size=4, num_gpu_blocks=16, speedup_ratio=0)
SCOPE = "namespace.dynamo.component.backend.endpoint.generate"

CHAT = {"model": "tiny", "messages": [{"role": "user", "content": "hello world"}], "max_tokens": 6}
PROMPTS = [
    "the quick brown fox jumps over the lazy dog",
    "hello world, hello there! how are you today?",
    "kv cache blocks are hashed, stored, reused and evicted by the worker.",
    "the quick brown fox jumps over the lazy dog",
]


@dataclass
class Reference:
    """A running worker and frontend, and an HTTP session to talk to them."""

    worker: Worker
    frontend: Frontend
    session: aiohttp.ClientSession
    tmp: Path
    events: list[EventMessage] = field(default_factory=list)

    async def get(self, url: str) -> tuple[int, str]:
        async with self.session.get(url) as response:
            return response.status, await response.text()

    async def post(self, path: str, body: Any, **kw: Any) -> tuple[int, str]:
        data = body if isinstance(body, str) else json.dumps(body)
        headers = {"content-type": "application/json", **kw.pop("headers", {})}
        async with self.session.post(
            self.frontend.url + path, data=data, headers=headers, **kw
        ) as response:
            return response.status, await response.text()

    async def records(self) -> list[dict[str, Any]]:
        """The discovery store's entries."""
        if self.worker.config.discovery == "etcd":
            client = EtcdClient(self.worker.config.etcd_url)
            try:
                return await client.range_prefix("v1/")
            finally:
                await client.close()
        return read_file_store(self.worker.config.file_kv)

    def frames(self) -> list[dict[str, Any]]:
        """The request-plane frames the worker received."""
        path = self.worker.config.record_requests
        assert path is not None
        return [json.loads(line) for line in path.read_text().splitlines()]

    def card(self) -> dict[str, Any]:
        return self.worker.card

    async def workload(self) -> None:
        """Chat and completion requests, streamed and not, enough to evict KV blocks."""
        for prompt in PROMPTS:
            status, _ = await self.post(
                "/v1/completions", {"model": "tiny", "prompt": prompt, "max_tokens": 5}
            )
            assert status == 200
        streams = [
            self.post("/v1/chat/completions", CHAT | {"stream": True}),
            self.post("/v1/completions", {"model": "tiny", "prompt": PROMPTS[1], "max_tokens": 3}),
        ]
        results = await asyncio.gather(*streams)
        assert all(status == 200 for status, _ in results), results


@contextlib.asynccontextmanager
async def reference(
    tmp: Path,
    model: Path,
    *,
    violations: tuple[str, ...] = (),
    engine: EngineConfig = ENGINE,
    discovery: str = "file",
    etcd_url: str = "",
    event_plane: str = "zmq",
    nats_url: str = "",
    lease_ttl: int = 10,
    worker_options: dict[str, Any] | None = None,
    frontend_options: dict[str, Any] | None = None,
) -> AsyncIterator[Reference]:
    """Start a worker and a frontend (violation modes go to the component that owns them)."""
    worker_modes = frozenset(m for m in violations if VIOLATIONS[m].component == "worker")
    frontend_modes = frozenset(m for m in violations if VIOLATIONS[m].component == "frontend")
    tmp.mkdir(parents=True, exist_ok=True)
    config = WorkerConfig(
        model_path=model,
        file_kv=tmp / "kv",
        discovery=discovery,  # type: ignore[arg-type]
        etcd_url=etcd_url,
        event_plane=event_plane,  # type: ignore[arg-type]
        nats_url=nats_url,
        lease_ttl=lease_ttl,
        engine=engine,
        violations=worker_modes,
        record_requests=tmp / "frames.jsonl",
        heartbeat_s=0.2,
        **(worker_options or {}),
    )
    frontend_config = FrontendConfig(
        **{
            "port": 0,
            "discovery": discovery,
            "file_kv": tmp / "kv",
            "etcd_url": etcd_url,
            "violations": frontend_modes,
            "wait_for_instances": 1,
            "poll_interval": 0.2,
            **(frontend_options or {}),
        }
    )
    async with (
        Worker(config) as worker,
        Frontend(frontend_config) as frontend,
        aiohttp.ClientSession() as session,
    ):
        yield Reference(worker, frontend, session, tmp)


@contextlib.asynccontextmanager
async def capturing(ref: Reference) -> AsyncIterator[list[EventMessage]]:
    """Collect the worker's event-plane messages while the block runs."""
    messages: list[EventMessage] = []
    worker = ref.worker
    if worker.config.event_plane == "nats":
        import nats

        nc = await nats.connect(worker.config.nats_url)

        async def append(message: Any) -> None:
            messages.append(EventMessage(message.subject, bytes(message.data)))

        subscription = await nc.subscribe("namespace.>", cb=append)
        await nc.flush()
        try:
            yield messages
            assert worker.pump is not None
            await worker.pump.flush()
            await nc.flush()
            await asyncio.sleep(0.2)
        finally:
            await subscription.unsubscribe()
            await nc.close()
        return
    endpoints = [getattr(p, "endpoint", "") for p in worker.publishers.values()]

    subscribed = asyncio.Event()

    async def collect() -> None:
        async for message in zmq_messages(endpoints, SCOPE, ready=subscribed):
            messages.append(message)

    task = asyncio.create_task(collect())
    await asyncio.wait_for(subscribed.wait(), 10)
    try:
        yield messages
        assert worker.pump is not None
        await worker.pump.flush()
        await asyncio.sleep(0.3)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def kv_payloads(messages: list[EventMessage]) -> list[Any]:
    """The kv-events payloads (lists of RouterEvent) of a capture, in order."""
    out = []
    for message in messages:
        decoded = message.view()["decoded"]
        if decoded.get("topic") == "kv-events":
            out.append(decoded["payload"]["__msgpack__"])
    return out


def preprocessed(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The PreprocessedRequest bodies of recorded frames."""
    from dynconform.contracts.two_part import frame_view

    return [frame_view(frame)["body"]["__msgpack__"] for frame in frames]
