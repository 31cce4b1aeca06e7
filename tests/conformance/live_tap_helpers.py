"""Helpers for the live tap tests: a ZMQ publisher that speaks ai-dynamo 1.6.1's framing,
the real capture's frames, and the reference stack."""

from __future__ import annotations

import json
import struct
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgpack
import zmq

from dynconform.contracts._io import iter_raw_frames

CAPTURES = Path(__file__).parents[1] / "fixtures" / "ai-dynamo-1.6.1"
RAW = CAPTURES / "etcd_nats" / "event_plane_raw.bin"
RECORDS = json.loads((CAPTURES / "file_zmq" / "file_store_records.json").read_text())
SCOPE = "dynamo/backend/generate"
PROMPTS = [
    "the quick brown fox jumps over the lazy dog",
    "hello world, hello there! how are you today?",
    "kv cache blocks are hashed, stored, reused and evicted by the worker.",
    "the quick brown fox jumps over the lazy dog",
]


def capture_frames(topic: str | None = None, limit: int | None = None) -> list[tuple[str, bytes]]:
    """``(subject, envelope bytes)`` of the real capture, optionally of one topic."""
    with RAW.open("rb") as stream:
        frames = [(f.subject, f.data) for f in iter_raw_frames(stream)]
    if topic is not None:
        frames = [f for f in frames if f[0].rsplit(".", 1)[1] == topic]
    return frames[:limit] if limit is not None else frames


def zmq_parts(data: bytes, *, version: int = 1) -> list[bytes]:
    """The four ZMQ frames ai-dynamo 1.6.1 sends for one envelope."""
    envelope = msgpack.unpackb(data)
    return [
        envelope["topic"].encode(),
        struct.pack(">Q", envelope["publisher_id"]),
        struct.pack(">Q", envelope["sequence"]),
        struct.pack(">BI", version, len(data)) + data,
    ]


def with_sequence(data: bytes, sequence: int) -> bytes:
    envelope = msgpack.unpackb(data)
    envelope["sequence"] = sequence
    packed: bytes = msgpack.packb(envelope)
    return packed


class Publisher:
    """A ZMQ publisher (an XPUB socket, which sees subscriptions) on a free loopback port."""

    def __init__(self) -> None:
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.XPUB)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.SNDHWM, 0)
        port = self.socket.bind_to_random_port("tcp://127.0.0.1")
        self.endpoint = f"tcp://127.0.0.1:{port}"

    def wait_subscriber(self, timeout: float) -> bool:
        """Wait until a subscriber has subscribed (what is sent before that is lost)."""
        if not self.socket.poll(int(timeout * 1000)):
            return False
        return self.socket.recv().startswith(b"\x01")

    def send(self, frames: list[tuple[str, bytes]]) -> None:
        for _, data in frames:
            self.socket.send_multipart(zmq_parts(data))

    def close(self) -> None:
        self.socket.close(0)
        self.context.term()


@contextmanager
def publisher() -> Iterator[Publisher]:
    pub = Publisher()
    try:
        yield pub
    finally:
        pub.close()


def post(url: str, body: dict[str, Any]) -> int:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()
        status: int = response.status
        return status


def workload(frontend: str, model: str) -> None:
    """Completions that store and reuse KV blocks."""
    for prompt in PROMPTS:
        body = {"model": model, "prompt": prompt, "max_tokens": 4}
        assert post(frontend + "/v1/completions", body) == 200


def wait_until(predicate: Any, timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(step)
    return True
