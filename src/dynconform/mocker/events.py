"""Typed events a mock worker emits, with their ai-dynamo 1.6.1 wire form.

The engine reports everything through one sink (``Callable[[EngineEvent], None]``):
KV cache events (the ``kv-events`` topic), forward-pass metrics (``forward-pass-metrics``),
KV usage (``kv_metrics``) and prefill completion (``active_sequences_events``). Each event's
``to_wire`` gives the msgpack-ready payload object of its topic, so publishers add only the
worker identity and the envelope.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "EngineEvent",
    "EventSink",
    "ForwardPassMetrics",
    "KvCleared",
    "KvEvent",
    "KvMetrics",
    "KvRemoved",
    "KvStored",
    "PrefillCompleted",
    "QueuedRequests",
    "ScheduledRequests",
    "StoredBlock",
]


@dataclass(frozen=True, slots=True)
class StoredBlock:
    """One full block of a ``stored`` event: its chained hash and its tokens' hash."""

    block_hash: int
    tokens_hash: int


@dataclass(frozen=True, slots=True)
class KvStored:
    """Full blocks became cached, in chain order; ``parent_hash`` is the block before them."""

    event_id: int
    parent_hash: int | None
    blocks: tuple[StoredBlock, ...]

    def to_wire(self, dp_rank: int = 0) -> dict[str, Any]:
        """The ``KvCacheEvent`` object: ``{event_id, data: {stored: ...}, dp_rank}``."""
        blocks = [
            {"block_hash": b.block_hash, "tokens_hash": b.tokens_hash, "mm_extra_info": None}
            for b in self.blocks
        ]
        data = {
            "stored": {"parent_hash": self.parent_hash, "start_position": None, "blocks": blocks}
        }
        return {"event_id": self.event_id, "data": data, "dp_rank": dp_rank}


@dataclass(frozen=True, slots=True)
class KvRemoved:
    """Cached blocks were evicted."""

    event_id: int
    block_hashes: tuple[int, ...]

    def to_wire(self, dp_rank: int = 0) -> dict[str, Any]:
        """The ``KvCacheEvent`` object: ``{event_id, data: {removed: ...}, dp_rank}``."""
        data = {"removed": {"block_hashes": list(self.block_hashes)}}
        return {"event_id": self.event_id, "data": data, "dp_rank": dp_rank}


@dataclass(frozen=True, slots=True)
class KvCleared:
    """Every cached block was dropped."""

    event_id: int

    def to_wire(self, dp_rank: int = 0) -> dict[str, Any]:
        """The ``KvCacheEvent`` object: ``{event_id, data: "cleared", dp_rank}``."""
        return {"event_id": self.event_id, "data": "cleared", "dp_rank": dp_rank}


KvEvent = KvStored | KvRemoved | KvCleared


def _variance(values: list[int]) -> float:
    # Population variance by Welford's online update, in order: the same float the real
    # worker reports for the same sequence of values (a two-pass sum can differ in the
    # last bit).
    mean = 0.0
    squares = 0.0
    for count, value in enumerate(values, 1):
        delta = value - mean
        mean += delta / count
        squares += delta * (value - mean)
    return squares / len(values) if values else 0.0


def _fields(snapshot: ScheduledRequests | QueuedRequests) -> dict[str, Any]:
    """A snapshot's fields by name, in declaration order (what ``dataclasses.asdict`` gives,
    without its deep copy: this runs on every forward pass)."""
    return {name: getattr(snapshot, name) for name in snapshot.__slots__}


@dataclass(frozen=True, slots=True)
class ScheduledRequests:
    """What one forward pass computed.

    Prefill: requests with prompt tokens in this pass, the tokens computed now, the population
    variance of their prompt lengths, and the tokens already in KV before this pass (prefix
    hits and earlier chunks). Decode: requests generating one token, the sum and population
    variance of their sequence lengths at the start of the pass.
    """

    num_prefill_requests: int = 0
    sum_prefill_tokens: int = 0
    var_prefill_length: float = 0.0
    sum_prefill_kv_tokens: int = 0
    num_decode_requests: int = 0
    sum_decode_kv_tokens: int = 0
    var_decode_kv_tokens: float = 0.0

    @classmethod
    def of(
        cls, prefills: list[tuple[int, int, int]], decode_lengths: list[int]
    ) -> ScheduledRequests:
        """From ``(tokens_now, prompt_length, kv_tokens_before)`` per prefill and decode lengths."""
        return cls(
            num_prefill_requests=len(prefills),
            sum_prefill_tokens=sum(p[0] for p in prefills),
            var_prefill_length=_variance([p[1] for p in prefills]),
            sum_prefill_kv_tokens=sum(p[2] for p in prefills),
            num_decode_requests=len(decode_lengths),
            sum_decode_kv_tokens=sum(decode_lengths),
            var_decode_kv_tokens=_variance(decode_lengths),
        )

    def to_wire(self) -> dict[str, Any]:
        """The ``scheduled_requests`` object (fields in wire order)."""
        return _fields(self)


@dataclass(frozen=True, slots=True)
class QueuedRequests:
    """What waits after a pass was scheduled.

    Prefill: new requests, their prompt lengths (sum, population variance). Decode: preempted
    requests that already generated tokens, their sequence lengths (sum, population variance).
    """

    num_prefill_requests: int = 0
    sum_prefill_tokens: int = 0
    var_prefill_length: float = 0.0
    num_decode_requests: int = 0
    sum_decode_kv_tokens: int = 0
    var_decode_kv_tokens: float = 0.0

    @classmethod
    def of(cls, prefill_lengths: list[int], decode_lengths: list[int]) -> QueuedRequests:
        """From the lengths of the waiting new and preempted requests."""
        return cls(
            num_prefill_requests=len(prefill_lengths),
            sum_prefill_tokens=sum(prefill_lengths),
            var_prefill_length=_variance(prefill_lengths),
            num_decode_requests=len(decode_lengths),
            sum_decode_kv_tokens=sum(decode_lengths),
            var_decode_kv_tokens=_variance(decode_lengths),
        )

    def to_wire(self) -> dict[str, Any]:
        """The ``queued_requests`` object (fields in wire order)."""
        return _fields(self)


@dataclass(frozen=True, slots=True)
class ForwardPassMetrics:
    """One forward pass (or an idle heartbeat with zero scheduled work).

    ``counter_id`` increases by one per snapshot, from 1; ``wall_time`` is the pass's simulated
    duration in seconds after the speedup ratio (0.0 for heartbeats).
    """

    counter_id: int
    wall_time: float
    scheduled: ScheduledRequests
    queued: QueuedRequests

    def to_wire(self, worker_id: int, dp_rank: int = 0) -> dict[str, Any]:
        """The ``forward-pass-metrics`` payload (``worker_id`` is a decimal string there)."""
        return {
            "version": 1,
            "worker_id": str(worker_id),
            "dp_rank": dp_rank,
            "counter_id": self.counter_id,
            "wall_time": self.wall_time,
            "scheduled_requests": self.scheduled.to_wire(),
            "queued_requests": self.queued.to_wire(),
        }


@dataclass(frozen=True, slots=True)
class KvMetrics:
    """KV blocks held by active sequences (cached free blocks are not counted)."""

    kv_used_blocks: int

    def to_wire(self, worker_id: int, dp_rank: int = 0) -> dict[str, Any]:
        """The ``kv_metrics`` payload."""
        return {
            "worker_id": worker_id,
            "dp_rank": dp_rank,
            "active_decode_blocks": None,
            "active_prefill_tokens": None,
            "kv_used_blocks": self.kv_used_blocks,
        }


@dataclass(frozen=True, slots=True)
class PrefillCompleted:
    """A request finished its first prefill (sent once; not again after a preemption)."""

    request_id: str

    def to_wire(
        self, worker_id: int, dp_rank: int = 0, router_id: int | None = None
    ) -> dict[str, Any]:
        """The ``active_sequences_events`` payload; ``router_id`` defaults to ``worker_id``."""
        return {
            "request_id": self.request_id,
            "worker": {"worker_id": worker_id, "dp_rank": dp_rank},
            "data": "MarkPrefillCompleted",
            "router_id": worker_id if router_id is None else router_id,
            "lora_name": None,
        }


EngineEvent = KvStored | KvRemoved | KvCleared | ForwardPassMetrics | KvMetrics | PrefillCompleted
EventSink = Callable[[EngineEvent], None]
