"""How the reference frontend picks a worker: ``round-robin``, ``random`` or ``kv``.

These are three of the modes of ``dynamo.frontend --router-mode`` in ai-dynamo 1.6.1 (its
default is ``round-robin``). In ``kv`` mode the frontend follows every worker's ``kv-events``
(the channels discovery lists, ZMQ or NATS) into a :class:`KvIndex`, hashes the request's
prompt into blocks exactly as the workers do (:func:`~dynconform.contracts.hashing.chain_hashes`
with the card's ``kv_cache_block_size``) and sends it where the cost is lowest::

    cost = (prompt blocks - blocks cached on the worker as a prefix) + active blocks

``active blocks`` are the prompt blocks of the requests the frontend has in flight on that
worker. Ties go to the worker with fewer requests in flight, then to the lower instance id.
A worker whose records leave discovery is forgotten, and its channel left.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import msgpack
import zmq
import zmq.asyncio

from dynconform.contracts.event_subjects import TOPIC_KV_EVENTS
from dynconform.contracts.hashing import chain_hashes
from dynconform.mocker.event_plane import decode_zmq_message

__all__ = [
    "ROUTER_MODES",
    "KvEventSubscriber",
    "KvIndex",
    "Router",
    "RouterMode",
    "Score",
]

RouterMode = Literal["round-robin", "random", "kv"]
#: The router modes the reference implements.
ROUTER_MODES: tuple[RouterMode, ...] = ("round-robin", "random", "kv")


class KvIndex:
    """Which KV blocks each worker holds, as its published kv-events say."""

    def __init__(self) -> None:
        self._blocks: dict[int, set[int]] = {}
        #: the workers discovery listed at the last :meth:`retain`
        self._listed: set[int] = set()
        #: RouterEvents applied so far
        self.applied = 0

    @property
    def workers(self) -> list[int]:
        """Workers with at least one block."""
        return sorted(worker for worker, blocks in self._blocks.items() if blocks)

    def blocks(self, worker: int) -> frozenset[int]:
        """The block hashes ``worker`` holds."""
        return frozenset(self._blocks.get(worker, ()))

    def apply(self, router_event: Any) -> None:
        """Follow one RouterEvent ``{worker_id, event: {event_id, data, ...}, ...}``;
        malformed events are ignored."""
        if not isinstance(router_event, dict):
            return
        event = router_event.get("event")
        worker = router_event.get("worker_id")
        if not isinstance(event, dict) or not isinstance(worker, int):
            return
        data = event.get("data")
        blocks = self._blocks.setdefault(worker, set())
        if data == "cleared":
            blocks.clear()
        elif isinstance(data, dict) and isinstance(data.get("stored"), dict):
            blocks.update(
                int(b["block_hash"])
                for b in data["stored"].get("blocks") or ()
                if isinstance(b, dict) and isinstance(b.get("block_hash"), int)
            )
        elif isinstance(data, dict) and isinstance(data.get("removed"), dict):
            blocks.difference_update(data["removed"].get("block_hashes") or ())
        else:
            return
        self.applied += 1

    def apply_payload(self, payload: Any) -> None:
        """Follow a kv-events payload: a list of RouterEvents."""
        for router_event in payload if isinstance(payload, list) else ():
            self.apply(router_event)

    def overlap(self, worker: int, block_hashes: Sequence[int]) -> int:
        """How many of ``block_hashes``, from the first on, ``worker`` holds."""
        blocks = self._blocks.get(worker)
        if not blocks:
            return 0
        count = 0
        for block_hash in block_hashes:
            if block_hash not in blocks:
                break
            count += 1
        return count

    def forget(self, worker: int) -> None:
        """Drop a worker that left."""
        self._blocks.pop(worker, None)

    def retain(self, listed: Iterable[int]) -> list[int]:
        """Forget the workers that discovery listed before and no longer lists; the workers
        forgotten, in order. A worker not listed yet keeps its blocks (its events may come
        before its record does)."""
        now = set(listed)
        gone = sorted(self._listed - now)
        for worker in gone:
            self.forget(worker)
        self._listed = now
        return gone


def _block_count(tokens: int, block_size: int) -> int:
    """The KV blocks ``tokens`` tokens occupy (none without a block size)."""
    return -(-tokens // block_size) if block_size > 0 else 0


@dataclass(frozen=True, slots=True)
class Score:
    """How a candidate worker scores for one request (lower ``cost`` wins)."""

    instance_id: int
    overlap: int
    active_blocks: int
    in_flight: int
    cost: int


class Router:
    """Orders a model's available instances for one request, and tracks the load it routes.

    ``mode`` is one of :data:`ROUTER_MODES`; ``seed`` seeds ``random``.
    """

    def __init__(self, mode: RouterMode = "round-robin", *, seed: int | None = None) -> None:
        if mode not in ROUTER_MODES:
            raise ValueError(f"unknown router mode {mode!r} (known: {', '.join(ROUTER_MODES)})")
        self.mode = mode
        self.index = KvIndex()
        self._random = random.Random(seed)
        self._in_flight: dict[int, int] = {}
        self._active_blocks: dict[int, int] = {}
        #: the scores of the last ``kv`` decision, best first
        self.last_scores: list[Score] = []

    def in_flight(self, instance_id: int) -> int:
        """Requests routed to ``instance_id`` and not finished yet."""
        return self._in_flight.get(instance_id, 0)

    def order(
        self, instance_ids: Sequence[int], token_ids: Sequence[int], block_size: int
    ) -> list[int]:
        """``instance_ids`` (already in round-robin order) in the order to try them."""
        ids = list(instance_ids)
        if self.mode == "random":
            self._random.shuffle(ids)
        elif self.mode == "kv" and ids:
            scores = self.scores(ids, token_ids, block_size)
            self.last_scores = scores
            ids = [score.instance_id for score in scores]
        return ids

    def scores(
        self, instance_ids: Iterable[int], token_ids: Sequence[int], block_size: int
    ) -> list[Score]:
        """The KV score of each instance for a prompt, best first."""
        hashes = [h for h, _ in chain_hashes(token_ids, block_size)] if block_size > 0 else []
        blocks = _block_count(len(token_ids), block_size)
        out = []
        for instance_id in instance_ids:
            overlap = self.index.overlap(instance_id, hashes)
            active = self._active_blocks.get(instance_id, 0)
            cost = blocks - overlap + active
            out.append(Score(instance_id, overlap, active, self.in_flight(instance_id), cost))
        out.sort(key=lambda s: (s.cost, s.in_flight, s.instance_id))
        return out

    def started(self, instance_id: int, prompt_tokens: int, block_size: int) -> None:
        """A request of ``prompt_tokens`` tokens went to ``instance_id``."""
        self._in_flight[instance_id] = self.in_flight(instance_id) + 1
        blocks = _block_count(prompt_tokens, block_size)
        self._active_blocks[instance_id] = self._active_blocks.get(instance_id, 0) + blocks

    def finished(self, instance_id: int, prompt_tokens: int, block_size: int) -> None:
        """A request that :meth:`started` ended."""
        self._in_flight[instance_id] = max(0, self.in_flight(instance_id) - 1)
        left = self._active_blocks.get(instance_id, 0) - _block_count(prompt_tokens, block_size)
        self._active_blocks[instance_id] = max(0, left)


class KvEventSubscriber:
    """Follows the ``kv-events`` channels that discovery lists into a :class:`KvIndex`.

    ZMQ channels (``{"kind": "Zmq", "config": {"endpoint"}}``) are read by one SUB socket;
    NATS channels (``{"kind": "Nats", "config": {"subject_prefix"}}``) need ``nats_url``.
    """

    def __init__(self, index: KvIndex, *, nats_url: str | None = None) -> None:
        self.index = index
        self.nats_url = nats_url
        #: ZMQ endpoints whose subscription handshake completed
        self.subscribed: set[str] = set()
        self._endpoints: set[str] = set()
        self._subjects: dict[str, Any] = {}
        self._socket: zmq.asyncio.Socket | None = None
        self._monitor: zmq.asyncio.Socket | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._nc: Any = None

    async def sync(self, channels: Iterable[dict[str, Any]]) -> None:
        """Follow every ``kv-events`` channel among these ``EventChannel`` records, the complete
        list discovery holds now: channels no longer listed are left (ZMQ endpoints
        disconnected, NATS subjects unsubscribed)."""
        endpoints: set[str] = set()
        subjects: set[str] = set()
        for channel in channels:
            if channel.get("topic") != TOPIC_KV_EVENTS:
                continue
            transport = channel.get("transport") or {}
            config = transport.get("config") or {}
            if transport.get("kind") == "Zmq" and isinstance(config.get("endpoint"), str):
                endpoints.add(config["endpoint"])
            elif transport.get("kind") == "Nats" and isinstance(config.get("subject_prefix"), str):
                subjects.add(f"{config['subject_prefix']}.{TOPIC_KV_EVENTS}")
        for endpoint in sorted(self._endpoints - endpoints):
            self._disconnect(endpoint)
        for subject in sorted(set(self._subjects) - subjects):
            subscription = self._subjects.pop(subject)
            self.subscribed.discard(subject)
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()
        for endpoint in sorted(endpoints):
            self._connect(endpoint)
        for subject in sorted(subjects):
            with contextlib.suppress(Exception):
                await self._subscribe(subject)

    @property
    def following(self) -> list[str]:
        """The ZMQ endpoints and NATS subjects followed now."""
        return sorted(self._endpoints | set(self._subjects))

    def _connect(self, endpoint: str) -> None:
        if endpoint in self._endpoints:
            return
        if self._socket is None:
            socket = zmq.asyncio.Context.instance().socket(zmq.SUB)
            socket.setsockopt(zmq.LINGER, 0)
            socket.setsockopt(zmq.RCVHWM, 100_000)
            socket.setsockopt(zmq.SUBSCRIBE, b"")
            self._monitor = socket.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED)
            self._socket = socket
            self._tasks.append(asyncio.create_task(self._read_zmq(), name="kv-events-zmq"))
            self._tasks.append(asyncio.create_task(self._watch_handshakes(), name="kv-zmq-mon"))
        self._endpoints.add(endpoint)
        self._socket.connect(endpoint)

    def _disconnect(self, endpoint: str) -> None:
        self._endpoints.discard(endpoint)
        self.subscribed.discard(endpoint)
        if self._socket is not None:
            with contextlib.suppress(zmq.ZMQError):
                self._socket.disconnect(endpoint)

    async def _watch_handshakes(self) -> None:
        assert self._monitor is not None
        while True:
            frames = await self._monitor.recv_multipart()
            endpoint = frames[1].decode(errors="replace") if len(frames) > 1 else ""
            self.subscribed.add(endpoint)

    async def _read_zmq(self) -> None:
        assert self._socket is not None
        while True:
            parts = await self._socket.recv_multipart()
            with contextlib.suppress(ValueError, msgpack.UnpackException, KeyError, TypeError):
                _topic, _pid, _seq, envelope = decode_zmq_message(parts)
                self._apply_envelope(envelope)

    def _apply_envelope(self, envelope: bytes) -> None:
        decoded = msgpack.unpackb(envelope, raw=False, strict_map_key=False)
        payload = decoded["payload"]
        if isinstance(payload, bytes | bytearray):
            payload = msgpack.unpackb(payload, raw=False, strict_map_key=False)
        self.index.apply_payload(payload)

    async def _subscribe(self, subject: str) -> None:
        if subject in self._subjects or self.nats_url is None:
            return
        if self._nc is None:
            import nats

            self._nc = await nats.connect(
                self.nats_url, connect_timeout=3, max_reconnect_attempts=0, allow_reconnect=False
            )

        async def handle(message: Any) -> None:
            with contextlib.suppress(ValueError, msgpack.UnpackException, KeyError, TypeError):
                self._apply_envelope(bytes(message.data))

        self._subjects[subject] = await self._nc.subscribe(subject, cb=handle)
        await self._nc.flush()
        self.subscribed.add(subject)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._socket is not None:
            with contextlib.suppress(zmq.ZMQError):
                self._socket.disable_monitor()
            self._socket.close()
            self._socket = None
        if self._monitor is not None:
            self._monitor.close()
            self._monitor = None
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.close()
            self._nc = None
