"""The event plane: envelope encoding and the ZMQ and NATS publishers (and subscribers).

Every message is a msgpack envelope ``{publisher_id, sequence, published_at, topic,
payload}`` whose ``payload`` holds the topic's msgpack payload. Each publisher has its own
random ``publisher_id`` and counts ``sequence`` from 0.

- NATS: the envelope is published on ``namespace.{ns}.component.{c}.endpoint.{e}.{topic}``.
- ZMQ (direct mode): each publisher binds its own PUB socket and sends four frames: the topic,
  the publisher id and the sequence (each a u64 big-endian), and a frame of version byte 1,
  the envelope length (u32 big-endian) and the envelope.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any, Literal

import msgpack
import zmq
import zmq.asyncio

from dynconform.contracts import json_view
from dynconform.contracts.event_subjects import format_subject

__all__ = [
    "ZMQ_FRAME_VERSION",
    "EventMessage",
    "NatsPublisher",
    "Publisher",
    "ZmqPublisher",
    "decode_zmq_message",
    "encode_envelope",
    "nats_messages",
    "zmq_messages",
]

ZMQ_FRAME_VERSION = 1
_U64 = struct.Struct(">Q")
_FRAME_HEAD = struct.Struct(">BI")


def encode_envelope(
    publisher_id: int,
    sequence: int,
    topic: str,
    payload: bytes,
    *,
    published_at: int | None = None,
    with_published_at: bool = True,
) -> bytes:
    """The msgpack envelope of one message (``published_at`` defaults to now, in ms)."""
    envelope: dict[str, Any] = {"publisher_id": publisher_id, "sequence": sequence}
    if with_published_at:
        envelope["published_at"] = (
            published_at if published_at is not None else int(time.time() * 1000)
        )
    envelope["topic"] = topic
    envelope["payload"] = payload
    data: bytes = msgpack.packb(envelope, use_bin_type=True)
    return data


class Publisher:
    """Publishes one topic's payloads; subclasses send the envelopes.

    ``wire_topic`` is the topic in the subject (or ZMQ topic frame), normally ``topic``.
    ``skip_sequence`` leaves that sequence number out; ``with_published_at`` false drops the
    field from envelopes. Both exist for violation modes.
    """

    kind = ""

    def __init__(
        self,
        topic: str,
        publisher_id: int,
        *,
        wire_topic: str | None = None,
        skip_sequence: int | None = None,
        with_published_at: bool = True,
    ) -> None:
        self.topic = topic
        self.wire_topic = wire_topic or topic
        self.publisher_id = publisher_id
        self.sequence = 0
        self.sent = 0
        self._skip = skip_sequence
        self._with_published_at = with_published_at

    def transport(self) -> dict[str, Any]:
        """The ``transport`` of this publisher's ``EventChannel`` record."""
        raise NotImplementedError

    async def start(self) -> None:
        """Bind or connect."""

    async def close(self) -> None:
        """Release the socket or connection."""

    async def publish(self, payload: Any) -> None:
        """Publish one payload object (packed with msgpack)."""
        if self.sequence == self._skip:
            self.sequence += 1
        body: bytes = msgpack.packb(payload, use_bin_type=True)
        envelope = encode_envelope(
            self.publisher_id,
            self.sequence,
            self.topic,
            body,
            with_published_at=self._with_published_at,
        )
        await self._send(self.sequence, envelope)
        self.sequence += 1
        self.sent += 1

    async def _send(self, sequence: int, envelope: bytes) -> None:
        raise NotImplementedError


class ZmqPublisher(Publisher):
    """A PUB socket of its own on ``host`` (a free port).

    ``little_endian_id`` writes the publisher-id frame little-endian (a violation mode).
    """

    kind = "Zmq"

    def __init__(
        self,
        topic: str,
        publisher_id: int,
        *,
        host: str,
        little_endian_id: bool = False,
        **options: Any,
    ) -> None:
        super().__init__(topic, publisher_id, **options)
        self.host = host
        self._little_endian_id = little_endian_id
        self.endpoint = ""
        self._context = zmq.asyncio.Context.instance()
        self._socket: zmq.asyncio.Socket | None = None

    async def start(self) -> None:
        socket = self._context.socket(zmq.PUB)
        socket.setsockopt(zmq.SNDHWM, 100_000)
        socket.setsockopt(zmq.LINGER, 200)
        port = socket.bind_to_random_port(f"tcp://{self.host}")
        self.endpoint = f"tcp://{self.host}:{port}"
        self._socket = socket

    def transport(self) -> dict[str, Any]:
        return {"kind": "Zmq", "config": {"endpoint": self.endpoint}}

    async def _send(self, sequence: int, envelope: bytes) -> None:
        assert self._socket is not None, "start() the publisher first"
        frame = _FRAME_HEAD.pack(ZMQ_FRAME_VERSION, len(envelope)) + envelope
        order: Literal["little", "big"] = "little" if self._little_endian_id else "big"
        parts = [
            self.wire_topic.encode(),
            self.publisher_id.to_bytes(8, order),
            _U64.pack(sequence),
            frame,
        ]
        await self._socket.send_multipart(parts)

    async def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


class NatsPublisher(Publisher):
    """Publishes on ``{subject_prefix}.{topic}`` through a shared NATS connection."""

    kind = "Nats"

    def __init__(
        self, topic: str, publisher_id: int, *, nc: Any, subject_prefix: str, **options: Any
    ) -> None:
        super().__init__(topic, publisher_id, **options)
        self._nc = nc
        self.subject_prefix = subject_prefix
        #: the prefix written into the EventChannel record (differs only in a violation mode)
        self.advertised_prefix = subject_prefix

    @property
    def subject(self) -> str:
        parts = self.subject_prefix.split(".")
        names = dict(zip(parts[::2], parts[1::2], strict=False))
        return format_subject(
            names["namespace"],
            self.wire_topic,
            component=names.get("component"),
            endpoint=names.get("endpoint"),
        )

    def transport(self) -> dict[str, Any]:
        return {"kind": "Nats", "config": {"subject_prefix": self.advertised_prefix}}

    async def _send(self, sequence: int, envelope: bytes) -> None:
        await self._nc.publish(self.subject, envelope)


@dataclass(frozen=True, slots=True)
class EventMessage:
    """One received message: its subject (for ZMQ: built from the scope and topic frame)."""

    subject: str
    envelope: bytes

    def view(self) -> dict[str, Any]:
        """The ``events.message`` instance: ``{"subject", "plane", "decoded"}``."""
        decoded = msgpack.unpackb(self.envelope, raw=False, strict_map_key=False)
        return {"subject": self.subject, "plane": "event_plane", "decoded": json_view(decoded)}


def decode_zmq_message(parts: list[bytes]) -> tuple[str, int, int, bytes]:
    """``(topic, publisher_id, sequence, envelope)`` of a four-frame ZMQ message."""
    if len(parts) != 4:
        raise ValueError(f"expected 4 frames, got {len(parts)}")
    topic, pid, seq, frame = parts
    version, length = _FRAME_HEAD.unpack_from(frame)
    if version != ZMQ_FRAME_VERSION or len(frame) != _FRAME_HEAD.size + length:
        raise ValueError("bad event frame header")
    envelope = frame[_FRAME_HEAD.size :]
    return topic.decode(), _U64.unpack(pid)[0], _U64.unpack(seq)[0], envelope


async def _await_handshakes(
    socket: zmq.asyncio.Socket, monitor: zmq.asyncio.Socket, count: int, timeout: float
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        done = 0
        while done < count and await monitor.poll(max(0, int((deadline - loop.time()) * 1000))):
            await monitor.recv_multipart()
            done += 1
    finally:
        socket.disable_monitor()
        monitor.close()


async def zmq_messages(
    endpoints: Iterable[str],
    scope_prefix: str,
    *,
    idle_timeout: float | None = None,
    ready: asyncio.Event | None = None,
) -> AsyncIterator[EventMessage]:
    """Messages from the ZMQ publishers at ``endpoints``, until none arrives for
    ``idle_timeout`` seconds (``None``: until the iteration is closed).

    ``scope_prefix`` (``namespace.{ns}.component.{c}.endpoint.{e}``) is put before the topic
    frame to form each message's subject. ``ready`` is set once every publisher accepted the
    subscription (PUB sockets drop what they send before that).
    """
    endpoints = list(endpoints)
    context = zmq.asyncio.Context.instance()
    socket = context.socket(zmq.SUB)
    socket.setsockopt(zmq.LINGER, 0)
    socket.setsockopt(zmq.RCVHWM, 100_000)
    socket.setsockopt(zmq.SUBSCRIBE, b"")
    monitor = socket.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED)
    handshakes = asyncio.ensure_future(_await_handshakes(socket, monitor, len(endpoints), 5.0))
    for endpoint in endpoints:
        socket.connect(endpoint)
    timeout = None if idle_timeout is None else int(idle_timeout * 1000)
    try:
        await handshakes
        await asyncio.sleep(0.05)  # the publisher applies the subscription after the handshake
        if ready is not None:
            ready.set()
        while True:
            if not await socket.poll(timeout):
                return
            parts = await socket.recv_multipart()
            topic, _pid, _seq, envelope = decode_zmq_message(parts)
            yield EventMessage(f"{scope_prefix}.{topic}", envelope)
    finally:
        handshakes.cancel()
        socket.close()


async def nats_messages(nc: Any, subject: str) -> AsyncIterator[EventMessage]:
    """Messages on ``subject`` (wildcards allowed) from a connected nats-py client."""
    subscription = await nc.subscribe(subject)
    try:
        async for message in subscription.messages:
            yield EventMessage(message.subject, bytes(message.data))
    finally:
        with contextlib.suppress(Exception):
            await subscription.unsubscribe()
