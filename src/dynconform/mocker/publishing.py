"""From engine events to event-plane messages: the worker identity, batching, heartbeats.

The engine reports through a synchronous sink; :class:`EventPump` queues the events and a task
publishes them in order. KV events waiting together go out as one ``kv-events`` message (a
list of ``RouterEvent``), as Dynamo batches them. On a ZMQ publisher an
``active_sequences_events`` payload is a batch ``{"events": [...]}`` (what 1.6.1's direct-ZMQ
ingress decodes); on NATS it is one ``ActiveSequenceEvent``. A :class:`LocalKvIndex` given as
``index`` follows every published ``RouterEvent`` to answer KV state queries.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Collection, Mapping
from typing import Any

from dynconform.contracts.event_subjects import (
    TOPIC_ACTIVE_SEQUENCES,
    TOPIC_FORWARD_PASS_METRICS,
    TOPIC_KV_EVENTS,
    TOPIC_KV_METRICS,
)
from dynconform.contracts.hashing import block_hash, tokens_hash
from dynconform.mocker.event_plane import Publisher
from dynconform.mocker.events import (
    EngineEvent,
    ForwardPassMetrics,
    KvCleared,
    KvMetrics,
    KvRemoved,
    KvStored,
    PrefillCompleted,
)
from dynconform.mocker.kv_query import LocalKvIndex

__all__ = ["HEARTBEAT_TOPIC", "EventPump"]

#: The unknown topic of the ``events.topic-known`` violation mode.
HEARTBEAT_TOPIC = "worker-heartbeat"
_FAKE_PARENT = tokens_hash([7, 7, 7, 7])


class EventPump:
    """Publishes a worker's engine events; ``violations`` are the active violation modes."""

    def __init__(
        self,
        worker_id: int,
        publishers: Mapping[str, Publisher],
        *,
        violations: Collection[str] = (),
        dp_rank: int = 0,
        index: LocalKvIndex | None = None,
    ) -> None:
        self.worker_id = worker_id
        self.publishers = publishers
        self.violations = frozenset(violations)
        self.dp_rank = dp_rank
        self.index = index
        self._queue: asyncio.Queue[EngineEvent] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._kv_seen = 0
        self._first_event_id: int | None = None
        self._id_offset = 0
        self.failed: BaseException | None = None

    def sink(self, event: EngineEvent) -> None:
        """The engine's sink: never blocks, never raises."""
        self._queue.put_nowait(event)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="event-pump")

    async def flush(self, timeout: float = 5.0) -> None:
        """Wait until every queued event is published."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), timeout)

    async def close(self) -> None:
        await self.flush(2.0)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def heartbeat_extra(self) -> None:
        """Publish the unknown-topic heartbeat of the ``events.topic-known`` violation mode."""
        publisher = self.publishers.get(HEARTBEAT_TOPIC)
        if publisher is not None:
            await publisher.publish({"worker_id": self.worker_id, "dp_rank": self.dp_rank})

    async def _run(self) -> None:
        held: EngineEvent | None = None
        while True:
            event = held if held is not None else await self._queue.get()
            held = None
            batch = [event]
            if isinstance(event, KvStored | KvRemoved | KvCleared):
                while not self._queue.empty() and len(batch) < 64:
                    nxt = self._queue.get_nowait()
                    if isinstance(nxt, KvStored | KvRemoved | KvCleared):
                        batch.append(nxt)
                    else:
                        held = nxt
                        break
            try:
                await self._publish(batch)
            except Exception as exc:  # a broken transport must not stop the engine
                self.failed = exc
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _publish(self, batch: list[EngineEvent]) -> None:
        first = batch[0]
        if isinstance(first, KvStored | KvRemoved | KvCleared):
            events: list[dict[str, Any]] = []
            for event in batch:
                assert isinstance(event, KvStored | KvRemoved | KvCleared)
                events.extend(self._kv_wire(event))
            await self.publishers[TOPIC_KV_EVENTS].publish(events)
            if self.index is not None:
                for router_event in events:
                    self.index.apply(router_event)
        elif isinstance(first, ForwardPassMetrics):
            await self.publishers[TOPIC_FORWARD_PASS_METRICS].publish(self._fpm_wire(first))
        elif isinstance(first, KvMetrics):
            payload = first.to_wire(self.worker_id, self.dp_rank)
            if "events.kv-metrics.wrong-type" in self.violations:
                payload["kv_used_blocks"] = str(payload["kv_used_blocks"])
            await self.publishers[TOPIC_KV_METRICS].publish(payload)
        elif isinstance(first, PrefillCompleted):
            payload = first.to_wire(self.worker_id, self.dp_rank)
            publisher = self.publishers[TOPIC_ACTIVE_SEQUENCES]
            if publisher.kind == "Zmq":
                payload = {"events": [payload]}
            await publisher.publish(payload)

    def _router_event(self, event: dict[str, Any]) -> dict[str, Any]:
        return {
            "worker_id": self.worker_id,
            "storage_tier": "device",
            "residency_domain": "worker",
            "event": event,
        }

    def _kv_wire(self, event: KvStored | KvRemoved | KvCleared) -> list[dict[str, Any]]:
        wire = event.to_wire(self.dp_rank)
        wire["event_id"] += self._id_offset
        self._kv_seen += 1
        if self._first_event_id is None:
            self._first_event_id = wire["event_id"]
        elif self._kv_seen == 2 and "kv.event-id-monotonic" in self.violations:
            wire["event_id"] = self._first_event_id
        data = wire["data"]
        if "kv.block-hash-chain" in self.violations and isinstance(data, dict) and "stored" in data:
            for block in data["stored"]["blocks"]:
                block["tokens_hash"] ^= 1
        out = [self._router_event(wire)]
        if self._kv_seen == 1:
            extra = self._injected(wire["event_id"] + 1)
            if extra is not None:
                self._id_offset += 1
                out.append(self._router_event(extra))
        return out

    def _injected(self, event_id: int) -> dict[str, Any] | None:
        if "kv.parent-stored" in self.violations:
            th = tokens_hash([11, 12, 13, 14])
            block = {
                "block_hash": block_hash(_FAKE_PARENT, th),
                "tokens_hash": th,
                "mm_extra_info": None,
            }
            stored = {"parent_hash": _FAKE_PARENT, "start_position": None, "blocks": [block]}
            return {"event_id": event_id, "data": {"stored": stored}, "dp_rank": self.dp_rank}
        if "kv.removed-after-stored" in self.violations:
            removed = {"block_hashes": [_FAKE_PARENT]}
            return {"event_id": event_id, "data": {"removed": removed}, "dp_rank": self.dp_rank}
        return None

    def _fpm_wire(self, metrics: ForwardPassMetrics) -> dict[str, Any]:
        payload = metrics.to_wire(self.worker_id, self.dp_rank)
        if "fpm.counter-monotonic" in self.violations and metrics.counter_id % 5 == 0:
            payload["counter_id"] = metrics.counter_id - 1
        return payload
