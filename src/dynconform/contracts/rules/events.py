"""Semantic rules of the events contracts: subjects, envelope sequences and KV cache events.

The KV stream rules replay the events of each worker in order, so a stream must start with
the worker's first event (a capture taken while the worker was already running reports
removals of blocks it never saw stored).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from dynconform.contracts import hashing
from dynconform.contracts._rules import Issue, Rule, record_rule, stream_rule
from dynconform.contracts.event_subjects import TOPIC_CONTRACTS, SubjectError, parse_subject

_Worker = tuple[int, int]
_Tier = tuple[int, int, str]


@record_rule(
    "events.subject-matches-topic",
    contract="events.message",
    summary="The last segment of an event-plane subject, decoded, equals the envelope's topic.",
)
def subject_matches_topic(message: Any) -> Iterator[Issue]:
    if message.get("plane") == "request_plane":
        return
    decoded = message["decoded"]
    topic = decoded.get("topic")
    if not isinstance(topic, str):
        return  # the envelope's schema reports it
    try:
        subject = parse_subject(message["subject"])
    except SubjectError as exc:
        yield "/subject", str(exc)
        return
    if subject.topic != topic:
        yield (
            "/decoded/topic",
            f"envelope topic {topic!r} differs from the subject's topic {subject.topic!r}",
        )


@record_rule(
    "events.topic-known",
    contract="events.envelope",
    summary="The envelope's topic is one that ai-dynamo 1.6.1 publishes, so its payload has a "
    "contract.",
)
def topic_known(envelope: Any) -> Iterator[Issue]:
    topic = envelope["topic"]
    if topic not in TOPIC_CONTRACTS:
        known = ", ".join(TOPIC_CONTRACTS)
        yield "/topic", f"unknown topic {topic!r}; payload not checked (known: {known})"


class _SequenceMonotonic:
    def __init__(self) -> None:
        self.last: dict[tuple[int, str], int] = {}

    def feed(self, envelope: Any, index: int) -> Iterator[Issue]:
        key = (envelope["publisher_id"], envelope["topic"])
        sequence = envelope["sequence"]
        previous = self.last.get(key)
        self.last[key] = sequence
        if previous is None or sequence == previous + 1:
            return
        who = f"publisher {key[0]} topic {key[1]!r}"
        if sequence <= previous:
            yield (
                "/sequence",
                f"{who}: sequence {sequence} after {previous} (duplicate or reordered)",
            )
        else:
            yield (
                "/sequence",
                f"{who}: sequence jumps from {previous} to {sequence} (lost messages)",
            )

    def finish(self) -> Iterable[Issue]:
        return ()


sequence_monotonic = stream_rule(
    "kv.sequence-monotonic",
    contract="events.envelope",
    summary="Per publisher and topic, each envelope's sequence is the previous one plus 1 "
    "(no gaps, duplicates or reordering).",
)(_SequenceMonotonic)


def _stored(data: Any) -> dict[str, Any] | None:
    return data["stored"] if isinstance(data, dict) and "stored" in data else None


def _removed(data: Any) -> list[int] | None:
    return data["removed"]["block_hashes"] if isinstance(data, dict) and "removed" in data else None


@record_rule(
    "kv.block-hash-chain",
    contract="events.kv-events",
    summary="Stored blocks chain by Dynamo's hashing: block_hash = XXH3-64(seed 1337) of "
    "[parent block_hash, tokens_hash] as little-endian u64, or tokens_hash without a parent. "
    "Holds for publishers that hash with Dynamo (the mocker); engines that publish their own "
    "block hashes (e.g. vLLM) do not follow it.",
)
def block_hash_chain(events: Any) -> Iterator[Issue]:
    for i, router_event in enumerate(events):
        stored = _stored(router_event["event"]["data"])
        if stored is None:
            continue
        parent = stored["parent_hash"]
        for j, block in enumerate(stored["blocks"]):
            expected = hashing.block_hash(parent, block["tokens_hash"])
            if block["block_hash"] != expected:
                yield (
                    f"/{i}/event/data/stored/blocks/{j}/block_hash",
                    f"block_hash {block['block_hash']} != {expected}, the hash of parent "
                    f"{parent} and tokens_hash {block['tokens_hash']}",
                )
            # Continue from the published hash so that one bad block is reported once.
            parent = block["block_hash"]


class _EventIdMonotonic:
    def __init__(self) -> None:
        self.last: dict[_Worker, int] = {}

    def feed(self, events: Any, index: int) -> Iterator[Issue]:
        for i, router_event in enumerate(events):
            event = router_event["event"]
            key = (router_event["worker_id"], event["dp_rank"])
            previous = self.last.get(key)
            self.last[key] = event["event_id"]
            if previous is not None and event["event_id"] <= previous:
                yield (
                    f"/{i}/event/event_id",
                    f"worker {key[0]} dp_rank {key[1]}: event_id {event['event_id']} after "
                    f"{previous}",
                )

    def finish(self) -> Iterable[Issue]:
        return ()


event_id_monotonic = stream_rule(
    "kv.event-id-monotonic",
    contract="events.kv-events",
    summary="Per worker and DP rank, KV cache event IDs strictly increase.",
)(_EventIdMonotonic)


class _Residency:
    """The blocks each worker, DP rank and storage tier holds, replayed from its events."""

    def __init__(self) -> None:
        self.blocks: dict[_Tier, set[int]] = {}

    def holds(self, worker: _Worker, block: int) -> bool:
        return any(
            block in held for (wid, rank, _), held in self.blocks.items() if (wid, rank) == worker
        )

    def apply(self, router_event: Any) -> None:
        event = router_event["event"]
        worker = (router_event["worker_id"], event["dp_rank"])
        data = event["data"]
        if data == "cleared":
            for key in [k for k in self.blocks if k[:2] == worker]:
                del self.blocks[key]
            return
        held = self.blocks.setdefault((*worker, router_event["storage_tier"]), set())
        stored = _stored(data)
        if stored is not None:
            held.update(block["block_hash"] for block in stored["blocks"])
        else:
            held.difference_update(_removed(data) or ())


class _RemovedAfterStored:
    def __init__(self) -> None:
        self.state = _Residency()

    def feed(self, events: Any, index: int) -> Iterator[Issue]:
        for i, router_event in enumerate(events):
            removed = _removed(router_event["event"]["data"])
            if removed:
                tier = (
                    router_event["worker_id"],
                    router_event["event"]["dp_rank"],
                    router_event["storage_tier"],
                )
                held = self.state.blocks.get(tier, set())
                for j, block in enumerate(removed):
                    if block not in held:
                        yield (
                            f"/{i}/event/data/removed/block_hashes/{j}",
                            f"worker {tier[0]} dp_rank {tier[1]} removes block {block} from "
                            f"{tier[2]}, which it does not hold",
                        )
            self.state.apply(router_event)

    def finish(self) -> Iterable[Issue]:
        return ()


removed_after_stored = stream_rule(
    "kv.removed-after-stored",
    contract="events.kv-events",
    summary="A removed block was stored earlier by the same worker, DP rank and storage tier, "
    "and not removed or cleared since.",
)(_RemovedAfterStored)


class _ParentStored:
    def __init__(self) -> None:
        self.state = _Residency()

    def feed(self, events: Any, index: int) -> Iterator[Issue]:
        for i, router_event in enumerate(events):
            stored = _stored(router_event["event"]["data"])
            if stored is not None and stored["parent_hash"] is not None:
                worker = (router_event["worker_id"], router_event["event"]["dp_rank"])
                if not self.state.holds(worker, stored["parent_hash"]):
                    yield (
                        f"/{i}/event/data/stored/parent_hash",
                        f"worker {worker[0]} dp_rank {worker[1]} stores blocks under parent "
                        f"{stored['parent_hash']}, which it does not hold",
                    )
            self.state.apply(router_event)

    def finish(self) -> Iterable[Issue]:
        return ()


parent_stored = stream_rule(
    "kv.parent-stored",
    contract="events.kv-events",
    summary="A stored batch's parent_hash, when set, is a block that the same worker and DP "
    "rank currently holds; the router drops stores whose parent it does not know.",
)(_ParentStored)


class _CounterMonotonic:
    def __init__(self) -> None:
        self.last: dict[tuple[str, int], int] = {}

    def feed(self, metrics: Any, index: int) -> Iterator[Issue]:
        key = (metrics["worker_id"], metrics["dp_rank"])
        counter = metrics["counter_id"]
        previous = self.last.get(key)
        self.last[key] = counter
        if previous is not None and counter <= previous:
            yield (
                "/counter_id",
                f"worker {key[0]} dp_rank {key[1]}: counter_id {counter} after {previous}",
            )

    def finish(self) -> Iterable[Issue]:
        return ()


counter_monotonic = stream_rule(
    "fpm.counter-monotonic",
    contract="events.forward-pass-metrics",
    summary="Per worker and DP rank, forward-pass metrics counter_id strictly increases "
    "(gaps are allowed: the engine-to-runtime hop may drop messages).",
)(_CounterMonotonic)


RULES: tuple[Rule, ...] = (
    subject_matches_topic,
    topic_known,
    sequence_monotonic,
    block_hash_chain,
    event_id_monotonic,
    removed_after_stored,
    parent_stored,
    counter_monotonic,
)
