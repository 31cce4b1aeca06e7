"""The events contracts against the real ai-dynamo 1.6.1 event plane, generated data and mutants."""

from __future__ import annotations

import base64
import copy
import functools
import json
import struct
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dynconform.contracts import Catalog, ValidationReport, Validator, hashing, read_instances
from dynconform.contracts.event_subjects import (
    KNOWN_TOPICS,
    SUBJECT_PATTERN,
    TOPIC_CONTRACTS,
    EventSubject,
    SubjectError,
    decode_segment,
    encode_segment,
    format_subject,
    parse_subject,
)

CAPTURES = Path(__file__).parents[1] / "fixtures" / "ai-dynamo-1.6.1"
NATS = CAPTURES / "etcd_nats" / "nats_messages.jsonl"
RAW = CAPTURES / "etcd_nats" / "event_plane_raw.bin"
BLOCK_SIZE = 16  # the captured mocker ran with --block-size 16
U64_MAX = 2**64 - 1

CATALOG = Catalog.load()
VALIDATOR = Validator(CATALOG)


@functools.cache
def _captured() -> tuple[dict[str, Any], ...]:
    return tuple(json.loads(line) for line in NATS.read_text().splitlines() if line.strip())


def _messages(count: int | None = None) -> list[dict[str, Any]]:
    """A private copy of the first ``count`` captured NATS messages (all by default)."""
    return copy.deepcopy(list(_captured()[:count]))


def _first(topic: str, where: Any = lambda payload: True) -> dict[str, Any]:
    for message in _captured():
        decoded = message["decoded"]
        if (
            message["plane"] == "event_plane"
            and decoded["topic"] == topic
            and where(decoded["payload"]["__msgpack__"])
        ):
            return copy.deepcopy(message)
    raise LookupError(topic)


def _kv_payloads() -> list[Any]:
    return [
        copy.deepcopy(m["decoded"]["payload"]["__msgpack__"])
        for m in _captured()
        if m["plane"] == "event_plane" and m["decoded"]["topic"] == "kv-events"
    ]


def _report_rules(report: ValidationReport) -> set[str]:
    return {v.rule for v in report.violations}


# --------------------------------------------------------------------------- real captures


def test_every_captured_nats_message_validates_as_one_stream() -> None:
    messages = _messages()
    report = VALIDATOR.validate_stream("events.message", messages)
    assert report.ok, [str(v) for v in report.violations[:10]]
    event_plane = [m for m in messages if m["plane"] == "event_plane"]
    topics = [m["decoded"]["topic"] for m in event_plane]
    assert report.checked["events.message"] == len(messages)
    assert report.checked["events.envelope"] == len(event_plane)
    for topic, contract in TOPIC_CONTRACTS.items():
        assert report.checked[contract] == topics.count(topic) > 0
    assert report.checked["request-plane.frame"] == len(messages) - len(event_plane) > 0


def test_every_raw_frame_validates_as_one_stream() -> None:
    frames, stream, fmt = read_instances(str(RAW))
    assert (stream, fmt) == (True, "raw")
    assert all("plane" not in frame for frame in frames)
    report = VALIDATOR.validate_stream("events.message", frames)
    assert report.ok, [str(v) for v in report.violations[:10]]
    # frames carry no `plane`: the dispatch default still checks every envelope and payload
    assert report.checked["events.envelope"] == len(frames)
    assert sum(report.checked[c] for c in TOPIC_CONTRACTS.values()) == len(frames)


def test_bundled_sample_is_a_prefix_of_the_raw_capture_and_validates() -> None:
    sample = resources.files("dynconform.contracts") / "samples/ai-dynamo-1.6.1/event_plane.bin"
    data = sample.read_bytes()
    assert len(data) < 300_000
    assert RAW.read_bytes().startswith(data)
    frames, stream, _ = read_instances(str(sample))
    assert stream
    assert len(frames) == 400
    report = VALIDATOR.validate_stream("events.message", frames)
    assert report.ok, [str(v) for v in report.violations[:10]]
    assert report.checked["events.kv-events"] > 0


def _request_token_ids() -> Iterator[list[int]]:
    """Token IDs of every captured request: TwoPartCodec frames decoded by hand."""
    for message in _captured():
        if message["plane"] != "request_plane":
            continue
        frame = base64.b64decode(message["decoded"]["__bytes_b64__"])
        header_len, body_len, _checksum = struct.unpack(">QQQ", frame[:24])
        assert len(frame) == 24 + header_len + body_len
        header = json.loads(frame[24 : 24 + header_len])
        assert header["payload_codec"] == "msgpack"
        body = msgpack.unpackb(frame[24 + header_len :], raw=False)
        yield body["token_ids"]


def test_router_hashes_of_captured_requests_match_the_stored_blocks() -> None:
    stored: dict[int, int] = {}
    for payload in _kv_payloads():
        for router_event in payload:
            data = router_event["event"]["data"]
            if isinstance(data, dict) and "stored" in data:
                for block in data["stored"]["blocks"]:
                    stored[block["block_hash"]] = block["tokens_hash"]
    computed = [
        pair for tokens in _request_token_ids() for pair in hashing.chain_hashes(tokens, BLOCK_SIZE)
    ]
    assert len(computed) > 1000
    missing = [(bh, th) for bh, th in computed if stored.get(bh) != th]
    assert missing == []


def test_the_capture_exercises_every_kv_rule() -> None:
    payloads = _kv_payloads()
    kinds = [
        next(iter(e["event"]["data"])) if isinstance(e["event"]["data"], dict) else "cleared"
        for p in payloads
        for e in p
    ]
    assert kinds.count("removed") > 100
    chained = [
        e
        for p in payloads
        for e in p
        if isinstance(e["event"]["data"], dict)
        and "stored" in e["event"]["data"]
        and e["event"]["data"]["stored"]["parent_hash"] is not None
    ]
    assert len(chained) > 100
    report = VALIDATOR.validate_stream("events.kv-events", payloads)
    assert report.ok


# --------------------------------------------------------------------------- subject grammar


def test_captured_subjects_parse_into_endpoint_scope() -> None:
    for message in _captured():
        if message["plane"] != "event_plane":
            continue
        subject = parse_subject(message["subject"])
        assert subject.scope == "endpoint"
        assert (subject.namespace, subject.component, subject.endpoint) == (
            "dynamo",
            "backend",
            "generate",
        )
        assert subject.topic == message["decoded"]["topic"] in KNOWN_TOPICS
        assert str(subject) == message["subject"]


_names = st.text(min_size=1, max_size=12)


@given(_names, _names, st.none() | _names, st.none() | _names)
def test_format_and_parse_round_trip(
    namespace: str, topic: str, component: str | None, endpoint: str | None
) -> None:
    if endpoint is not None and component is None:
        with pytest.raises(SubjectError):
            format_subject(namespace, topic, endpoint=endpoint)
        return
    subject = format_subject(namespace, topic, component=component, endpoint=endpoint)
    assert CATALOG.validator("events.message").is_valid({"subject": subject, "decoded": {}})
    parsed = parse_subject(subject)
    assert parsed == EventSubject(namespace, topic, component, endpoint)
    assert decode_segment(encode_segment(topic)) == topic


@pytest.mark.parametrize(
    "subject",
    [
        "namespace.dynamo.kv.events",  # four tokens
        "ns.dynamo.kv-events",
        "namespace.dynamo.endpoint.generate.kv-events",  # endpoint without component
        "namespace.dyn%2amo.kv-events",  # lower-case hex
        "namespace.dyn%41mo.kv-events",  # 'A' needs no escape: not canonical
        "namespace.dyn%4.kv-events",
        "namespace..kv-events",
        "namespace.dynamo.kv events",
    ],
)
def test_non_canonical_subjects_are_rejected(subject: str) -> None:
    with pytest.raises(SubjectError):
        parse_subject(subject)


def test_known_topics_match_the_envelope_dispatch_and_subject_pattern() -> None:
    envelope = CATALOG.get("events.envelope")
    assert envelope.dispatch is not None
    assert dict(envelope.dispatch.contracts) == dict(TOPIC_CONTRACTS)
    message = CATALOG.get("events.message").schema
    assert message["allOf"][0]["else"]["properties"]["subject"]["pattern"] == SUBJECT_PATTERN
    assert all(name in CATALOG for name in TOPIC_CONTRACTS.values())


# --------------------------------------------------------------------------- generated data

_u64 = st.integers(0, U64_MAX)
_u32 = st.integers(0, 2**32 - 1)
_count = st.integers(0, 10**6)
_variance = st.floats(0, 1e9, allow_nan=False, allow_infinity=False)
_TIERS = ("device", "host_pinned", "disk", "external")


def _stored_event(
    worker: int, dp_rank: int, event_id: int, parent: int | None, tokens: list[int], **extra: Any
) -> dict[str, Any]:
    blocks = [
        {"block_hash": bh, "tokens_hash": th, "mm_extra_info": None}
        for bh, th in hashing.chain_hashes(tokens, BLOCK_SIZE, parent)
    ]
    return {
        "worker_id": worker,
        "storage_tier": extra.get("storage_tier", "device"),
        "residency_domain": "worker",
        "event": {
            "event_id": event_id,
            "data": {
                "stored": {
                    "parent_hash": parent,
                    "start_position": extra.get("start_position"),
                    "blocks": blocks,
                }
            },
            "dp_rank": dp_rank,
        },
    }


def _removed_event(
    worker: int, dp_rank: int, event_id: int, hashes: list[int], tier: str = "device"
) -> dict[str, Any]:
    return {
        "worker_id": worker,
        "storage_tier": tier,
        "residency_domain": "worker",
        "event": {
            "event_id": event_id,
            "data": {"removed": {"block_hashes": hashes}},
            "dp_rank": dp_rank,
        },
    }


@st.composite
def kv_event_batches(draw: st.DrawFn) -> list[list[dict[str, Any]]]:
    """A consistent KV event history of one worker: chained stores, removals, clears."""
    worker, dp_rank = draw(_u64), draw(st.integers(0, 7))
    event_id = draw(st.integers(0, 10**6))
    held: dict[str, list[int]] = {tier: [] for tier in _TIERS}
    batches = []
    for _ in range(draw(st.integers(1, 5))):
        batch = []
        for _ in range(draw(st.integers(1, 3))):
            event_id += draw(st.integers(1, 3))
            tier = draw(st.sampled_from(_TIERS))
            kind = draw(st.sampled_from(("stored", "stored", "removed", "cleared")))
            if kind == "removed" and held[tier]:
                gone = draw(st.lists(st.sampled_from(held[tier]), min_size=1, unique=True))
                held[tier] = [h for h in held[tier] if h not in gone]
                batch.append(_removed_event(worker, dp_rank, event_id, gone, tier))
            elif kind == "cleared":
                held = {t: [] for t in _TIERS}
                batch.append(
                    {
                        "worker_id": worker,
                        "storage_tier": "device",
                        "residency_domain": "worker",
                        "event": {"event_id": event_id, "data": "cleared", "dp_rank": dp_rank},
                    }
                )
            else:
                candidates = [h for hashes in held.values() for h in hashes]
                parent = draw(st.none() | st.sampled_from(candidates)) if candidates else None
                tokens = draw(st.lists(_u32, min_size=BLOCK_SIZE, max_size=4 * BLOCK_SIZE))
                start = draw(st.none() | st.integers(0, 4096))
                event = _stored_event(
                    worker,
                    dp_rank,
                    event_id,
                    parent,
                    tokens,
                    storage_tier=tier,
                    start_position=start,
                )
                if draw(st.booleans()):
                    offsets = [[0, draw(st.integers(1, BLOCK_SIZE))]]
                    event["event"]["data"]["stored"]["blocks"][0]["mm_extra_info"] = {
                        "mm_objects": [{"mm_hash": draw(_u64), "offsets": offsets}]
                    }
                held[tier] += [b["block_hash"] for b in event["event"]["data"]["stored"]["blocks"]]
                batch.append(event)
        batches.append(batch)
    return batches


_scheduled = st.fixed_dictionaries(
    {
        "num_prefill_requests": _count,
        "sum_prefill_tokens": _count,
        "var_prefill_length": _variance,
        "sum_prefill_kv_tokens": _count,
        "num_decode_requests": _count,
        "sum_decode_kv_tokens": _count,
        "var_decode_kv_tokens": _variance,
    }
)
_queued = _scheduled.map(lambda d: {k: v for k, v in d.items() if k != "sum_prefill_kv_tokens"})
_fpm = st.fixed_dictionaries(
    {
        "version": st.just(1),
        "worker_id": _u64.map(str),
        "dp_rank": _u32,
        "counter_id": _u64,
        "wall_time": _variance,
        "scheduled_requests": _scheduled,
        "queued_requests": _queued,
    }
)
_kv_metrics = st.fixed_dictionaries(
    {
        "worker_id": _u64,
        "dp_rank": _u32,
        "active_decode_blocks": st.none() | _u64,
        "active_prefill_tokens": st.none() | _u64,
        "kv_used_blocks": st.none() | _u64,
    }
)
_duration = st.fixed_dictionaries({"secs": _u64, "nanos": st.integers(0, 999_999_999)})
_add_request = st.fixed_dictionaries(
    {
        "token_sequence": st.none() | st.lists(_u64, max_size=5),
        "track_prefill_tokens": st.booleans(),
        "expected_output_tokens": st.none() | _u32,
        "prefill_load_hint": st.none()
        | st.fixed_dictionaries(
            {
                "initial_effective_prefill_tokens": _u64,
                "expected_prefill_duration": st.none() | _duration,
            }
        ),
    }
)
_sequence_event = st.fixed_dictionaries(
    {
        "request_id": st.uuids().map(str),
        "worker": st.fixed_dictionaries({"worker_id": _u64, "dp_rank": _u32}),
        "data": st.sampled_from(["Free", "MarkPrefillCompleted"])
        | _add_request.map(lambda a: {"AddRequest": a}),
        "router_id": _u64,
        "lora_name": st.none() | st.text(max_size=8),
    }
)
_active_sequences = _sequence_event | st.lists(_sequence_event, min_size=1, max_size=3).map(
    lambda events: {"events": events}
)


@given(kv_event_batches())
def test_generated_kv_event_histories_validate(batches: list[list[dict[str, Any]]]) -> None:
    report = VALIDATOR.validate_stream("events.kv-events", batches)
    assert report.ok, [str(v) for v in report.violations]


@given(
    st.lists(st.tuples(st.sampled_from(KNOWN_TOPICS), st.data()), min_size=1, max_size=8),
    kv_event_batches(),
    _names,
    st.none() | _names,
)
def test_generated_message_streams_validate(
    draws: list[tuple[str, st.DataObject]],
    kv_history: list[list[dict[str, Any]]],
    namespace: str,
    component: str | None,
) -> None:
    strategies = {
        "kv_metrics": _kv_metrics,
        "forward-pass-metrics": _fpm,
        "active_sequences_events": _active_sequences,
    }
    sequences: dict[str, int] = {}
    messages = []
    for topic, data in draws:
        if topic == "kv-events":
            if not kv_history:
                continue
            payload: Any = kv_history.pop(0)
        else:
            payload = data.draw(strategies[topic])
        sequence = sequences.get(topic, -1) + 1
        sequences[topic] = sequence
        envelope = {
            "publisher_id": KNOWN_TOPICS.index(topic) + 1,
            "sequence": sequence,
            "published_at": 1_795_354_713_132 + len(messages),
            "topic": topic,
            "payload": {"__msgpack__": payload},
        }
        subject = format_subject(namespace, topic, component=component)
        messages.append({"subject": subject, "decoded": envelope})
    if any(m["decoded"]["topic"] == "forward-pass-metrics" for m in messages):
        counters = iter(range(10**6))
        for m in messages:
            if m["decoded"]["topic"] == "forward-pass-metrics":
                m["decoded"]["payload"]["__msgpack__"]["counter_id"] = next(counters)
    report = VALIDATOR.validate_stream("events.message", messages)
    assert report.ok, [str(v) for v in report.violations]


@pytest.mark.parametrize(
    ("contract", "strategy"),
    [
        ("events.kv-metrics", _kv_metrics),
        ("events.forward-pass-metrics", _fpm),
        ("events.active-sequences", _active_sequences),
    ],
)
def test_generated_payloads_validate(contract: str, strategy: st.SearchStrategy[Any]) -> None:
    @given(strategy)
    def check(payload: Any) -> None:
        report = VALIDATOR.validate(contract, payload)
        assert report.ok, [str(v) for v in report.violations]

    check()


# --------------------------------------------------------------------------- mutants


def _only(
    report: ValidationReport,
    rule: str | frozenset[str],
    contract: str,
    pointer: str | None = None,
) -> None:
    expected = {rule} if isinstance(rule, str) else set(rule)
    assert _report_rules(report) == expected, [str(v) for v in report.violations]
    assert {v.contract for v in report.violations} == {contract}
    if pointer is not None:
        assert pointer in {v.pointer for v in report.violations}


def _kv_message_with_removal() -> dict[str, Any]:
    return _first("kv-events", lambda p: any("removed" in e["event"]["data"] for e in p))


@pytest.mark.parametrize(
    ("mutate", "rule", "contract", "pointer"),
    [
        (
            lambda m: m["decoded"].pop("publisher_id"),
            "schema.required",
            "events.envelope",
            "/decoded",
        ),
        (
            lambda m: m["decoded"].update(sequence="3"),
            "schema.type",
            "events.envelope",
            "/decoded/sequence",
        ),
        (
            lambda m: m["decoded"].update(publisher_id=2**53),
            "schema.maximum",
            "events.envelope",
            "/decoded/publisher_id",
        ),
        (
            lambda m: m["decoded"].update(published_at=U64_MAX + 1),
            "schema.maximum",
            "events.envelope",
            "/decoded/published_at",
        ),
        (
            lambda m: m["decoded"]["payload"]["__msgpack__"][0]["event"].update(
                event_id=U64_MAX + 1
            ),
            "schema.maximum",
            "events.kv-events",
            "/decoded/payload/__msgpack__/0/event/event_id",
        ),
        (
            lambda m: m["decoded"]["payload"]["__msgpack__"][0].pop("worker_id"),
            "schema.required",
            "events.kv-events",
            "/decoded/payload/__msgpack__/0",
        ),
        (
            lambda m: m["decoded"]["payload"]["__msgpack__"][0].update(storage_tier="gpu"),
            "schema.enum",
            "events.kv-events",
            "/decoded/payload/__msgpack__/0/storage_tier",
        ),
        (
            lambda m: m["decoded"]["payload"]["__msgpack__"][0].update(residency_domain=None),
            "schema.enum",
            "events.kv-events",
            "/decoded/payload/__msgpack__/0/residency_domain",
        ),
        (
            lambda m: m["decoded"]["payload"]["__msgpack__"][0]["event"].update(data="flushed"),
            "schema.const",
            "events.kv-events",
            "/decoded/payload/__msgpack__/0/event/data",
        ),
        (
            lambda m: m["decoded"]["payload"]["__msgpack__"][0]["event"].update(
                data={"stored": {"parent_hash": None, "start_position": None, "blocks": []}, "x": 1}
            ),
            frozenset({"schema.maxProperties", "schema.enum"}),
            "events.kv-events",
            "/decoded/payload/__msgpack__/0/event/data",
        ),
        (
            lambda m: m["decoded"].update(payload={"__bytes_b64__": "AAEC"}),
            frozenset({"schema.required", "schema.additionalProperties"}),
            "events.envelope",
            "/decoded/payload",
        ),
        (
            lambda m: m.update(subject="namespace.dynamo.component.backend.kv events"),
            "schema.pattern",
            "events.message",
            "/subject",
        ),
        (
            lambda m: m.update(plane="request_plane"),
            frozenset({"schema.required", "schema.additionalProperties"}),
            "events.message",
            "/decoded",
        ),
        (
            lambda m: m["decoded"]["payload"]["__msgpack__"][0]["event"]["data"]["stored"][
                "blocks"
            ][2].update(tokens_hash=12345),
            "kv.block-hash-chain",
            "events.kv-events",
            "/decoded/payload/__msgpack__/0/event/data/stored/blocks/2/block_hash",
        ),
        (
            lambda m: m.update(
                subject=m["subject"].replace("kv-events", "kv_metrics"),
            ),
            "events.subject-matches-topic",
            "events.message",
            "/decoded/topic",
        ),
        (
            lambda m: m.update(subject=m["subject"].replace("dynamo", "dyn%61mo")),
            "events.subject-matches-topic",
            "events.message",
            "/subject",
        ),
        (
            lambda m: (
                m.update(subject=m["subject"].replace("kv-events", "kv-events-v2")),
                m["decoded"].update(topic="kv-events-v2"),
            ),
            "events.topic-known",
            "events.envelope",
            "/decoded/topic",
        ),
    ],
)
def test_single_message_mutants_are_rejected(
    mutate: Any, rule: str | frozenset[str], contract: str, pointer: str
) -> None:
    message = _first("kv-events")
    assert VALIDATOR.validate("events.message", copy.deepcopy(message)).ok
    mutate(message)
    _only(VALIDATOR.validate("events.message", message), rule, contract, pointer)


def test_removed_block_without_a_store_is_rejected_in_a_single_message() -> None:
    # a real removal, seen without the stores before it
    report = VALIDATOR.validate("events.message", _kv_message_with_removal())
    assert report.ok is False
    assert _report_rules(report) == {"kv.removed-after-stored"}


@pytest.mark.parametrize(
    ("mutate", "rule", "pointer"),
    [
        (lambda p: p.update(worker_id=7587899083018119687), "schema.type", "/worker_id"),
        (lambda p: p.update(version=2), "schema.const", "/version"),
        (lambda p: p.update(worker_id="worker-1"), "schema.pattern", "/worker_id"),
        (lambda p: p.pop("counter_id"), "schema.required", ""),
        (lambda p: p.update(wall_time=-0.5), "schema.minimum", "/wall_time"),
        (
            lambda p: p["scheduled_requests"].pop("sum_prefill_kv_tokens"),
            "schema.required",
            "/scheduled_requests",
        ),
        (
            lambda p: p["queued_requests"].update(num_decode_requests=U64_MAX + 1),
            "schema.maximum",
            "/queued_requests/num_decode_requests",
        ),
    ],
)
def test_forward_pass_metrics_mutants(mutate: Any, rule: str, pointer: str) -> None:
    payload = _first("forward-pass-metrics")["decoded"]["payload"]["__msgpack__"]
    mutate(payload)
    _only(
        VALIDATOR.validate("events.forward-pass-metrics", payload),
        rule,
        "events.forward-pass-metrics",
        pointer,
    )


@pytest.mark.parametrize(
    ("mutate", "rule", "pointer"),
    [
        (lambda p: p.update(data="Finished"), "schema.enum", "/data"),
        (
            lambda p: p.update(data={"AddRequest": {"token_sequence": None}}),
            "schema.required",
            "/data/AddRequest",
        ),
        (lambda p: p.update(router_id=-1), "schema.minimum", "/router_id"),
        (lambda p: p["worker"].pop("dp_rank"), "schema.required", "/worker"),
        (lambda p: p.update(lora_name=3), "schema.type", "/lora_name"),
        (lambda p: p.clear() or p.update(events=[]), "schema.minItems", "/events"),
    ],
)
def test_active_sequence_mutants(mutate: Any, rule: str, pointer: str) -> None:
    payload = _first("active_sequences_events")["decoded"]["payload"]["__msgpack__"]
    mutate(payload)
    _only(
        VALIDATOR.validate("events.active-sequences", payload),
        rule,
        "events.active-sequences",
        pointer,
    )


def test_kv_metrics_mutants() -> None:
    payload = _first("kv_metrics")["decoded"]["payload"]["__msgpack__"]
    payload["kv_used_blocks"] = "32"
    _only(
        VALIDATOR.validate("events.kv-metrics", payload),
        "schema.type",
        "events.kv-metrics",
        "/kv_used_blocks",
    )
    del payload["kv_used_blocks"]
    _only(
        VALIDATOR.validate("events.kv-metrics", payload), "schema.required", "events.kv-metrics", ""
    )


def _prefix(count: int = 400) -> list[dict[str, Any]]:
    """The first ``count`` captured event-plane messages."""
    found = [m for m in _captured() if m["plane"] == "event_plane"][:count]
    return copy.deepcopy(found)


def _positions(messages: list[dict[str, Any]], topic: str) -> list[int]:
    return [
        i
        for i, m in enumerate(messages)
        if m["plane"] == "event_plane" and m["decoded"]["topic"] == topic
    ]


def test_capture_prefix_is_valid() -> None:
    assert VALIDATOR.validate_stream("events.message", _prefix()).ok


def test_lost_message_is_a_sequence_gap() -> None:
    messages = _prefix()
    del messages[_positions(messages, "forward-pass-metrics")[5]]
    report = VALIDATOR.validate_stream("events.message", messages)
    _only(report, "kv.sequence-monotonic", "events.envelope", "/decoded/sequence")
    assert "jumps" in report.violations[0].message


def test_reordered_messages_make_the_sequence_go_back() -> None:
    messages = _prefix()
    first, second = _positions(messages, "kv_metrics")[2:4]
    messages[first], messages[second] = messages[second], messages[first]
    report = VALIDATOR.validate_stream("events.message", messages)
    _only(report, "kv.sequence-monotonic", "events.envelope")
    assert any("duplicate or reordered" in v.message for v in report.violations)


def test_duplicated_message_breaks_sequence_and_counter() -> None:
    messages = _prefix()
    at = _positions(messages, "forward-pass-metrics")[3]
    messages.insert(at + 1, copy.deepcopy(messages[at]))
    report = VALIDATOR.validate_stream("events.message", messages)
    assert _report_rules(report) == {"kv.sequence-monotonic", "fpm.counter-monotonic"}
    assert {v.index for v in report.violations} == {at + 1}


def test_removal_before_store_is_rejected() -> None:
    payloads = _kv_payloads()
    removal = next(
        (i, j)
        for i, p in enumerate(payloads)
        for j, e in enumerate(p)
        if "removed" in e["event"]["data"]
    )
    i, j = removal
    payloads[i][j]["event"]["data"]["removed"]["block_hashes"][0] = 12345
    report = VALIDATOR.validate_stream("events.kv-events", payloads)
    _only(
        report,
        "kv.removed-after-stored",
        "events.kv-events",
        f"/{j}/event/data/removed/block_hashes/0",
    )
    assert {v.index for v in report.violations} == {i}


def test_removal_from_another_tier_is_rejected() -> None:
    tokens = list(range(2 * BLOCK_SIZE))
    stored = _stored_event(1, 0, 1, None, tokens)
    hashes = [b["block_hash"] for b in stored["event"]["data"]["stored"]["blocks"]]
    ok = VALIDATOR.validate_stream(
        "events.kv-events", [[stored], [_removed_event(1, 0, 2, hashes)]]
    )
    assert ok.ok
    wrong_tier = [[stored], [_removed_event(1, 0, 2, hashes, tier="host_pinned")]]
    report = VALIDATOR.validate_stream("events.kv-events", wrong_tier)
    _only(report, "kv.removed-after-stored", "events.kv-events")
    removed_twice = [
        [stored],
        [_removed_event(1, 0, 2, hashes)],
        [_removed_event(1, 0, 3, hashes[:1])],
    ]
    _only(
        VALIDATOR.validate_stream("events.kv-events", removed_twice),
        "kv.removed-after-stored",
        "events.kv-events",
    )


def test_store_under_unknown_parent_is_rejected() -> None:
    tokens = list(range(2 * BLOCK_SIZE))
    root = _stored_event(1, 0, 1, None, tokens)
    tip = root["event"]["data"]["stored"]["blocks"][-1]["block_hash"]
    child = _stored_event(1, 0, 2, tip, tokens)
    assert VALIDATOR.validate_stream("events.kv-events", [[root, child]]).ok
    orphan = _stored_event(1, 0, 2, tip ^ 1, tokens)
    _only(
        VALIDATOR.validate_stream("events.kv-events", [[root], [orphan]]),
        "kv.parent-stored",
        "events.kv-events",
        "/0/event/data/stored/parent_hash",
    )
    # the same parent on another worker does not count
    elsewhere = _stored_event(2, 0, 1, tip, tokens)
    _only(
        VALIDATOR.validate_stream("events.kv-events", [[root], [elsewhere]]),
        "kv.parent-stored",
        "events.kv-events",
    )
    # nor does a parent removed in between
    removed = _removed_event(1, 0, 2, [tip])
    late = _stored_event(1, 0, 3, tip, tokens)
    _only(
        VALIDATOR.validate_stream("events.kv-events", [[root], [removed], [late]]),
        "kv.parent-stored",
        "events.kv-events",
    )


def test_clear_forgets_every_tier_of_the_worker() -> None:
    tokens = list(range(BLOCK_SIZE))
    stored = _stored_event(1, 0, 1, None, tokens, storage_tier="host_pinned")
    block = stored["event"]["data"]["stored"]["blocks"][0]["block_hash"]
    cleared = {
        "worker_id": 1,
        "storage_tier": "device",
        "residency_domain": "worker",
        "event": {"event_id": 2, "data": "cleared", "dp_rank": 0},
    }
    stream = [[stored], [cleared], [_removed_event(1, 0, 3, [block], tier="host_pinned")]]
    _only(
        VALIDATOR.validate_stream("events.kv-events", stream),
        "kv.removed-after-stored",
        "events.kv-events",
    )


def test_broken_hash_chain_is_rejected() -> None:
    event = _stored_event(1, 0, 1, None, list(range(3 * BLOCK_SIZE)))
    assert VALIDATOR.validate("events.kv-events", [event]).ok
    event["event"]["data"]["stored"]["blocks"][1]["block_hash"] ^= 1
    report = VALIDATOR.validate("events.kv-events", [event])
    # block 1 no longer matches; block 2 is checked against the published block 1
    assert [v.pointer for v in report.violations] == [
        "/0/event/data/stored/blocks/1/block_hash",
        "/0/event/data/stored/blocks/2/block_hash",
    ]
    assert _report_rules(report) == {"kv.block-hash-chain"}


def test_event_id_must_increase_per_worker_and_rank() -> None:
    payloads = _kv_payloads()[:20]
    payloads[5][0]["event"]["event_id"] = payloads[4][-1]["event"]["event_id"]
    report = VALIDATOR.validate_stream("events.kv-events", payloads)
    _only(report, "kv.event-id-monotonic", "events.kv-events", "/0/event/event_id")
    tokens = list(range(BLOCK_SIZE))
    other_ranks = [[_stored_event(1, 0, 5, None, tokens)], [_stored_event(1, 1, 1, None, tokens)]]
    assert VALIDATOR.validate_stream("events.kv-events", other_ranks).ok


def test_forward_pass_counter_must_increase() -> None:
    first = _first("forward-pass-metrics")["decoded"]["payload"]["__msgpack__"]
    later = copy.deepcopy(first)
    later["counter_id"] = first["counter_id"] + 7  # gaps are allowed
    assert VALIDATOR.validate_stream("events.forward-pass-metrics", [first, later]).ok
    _only(
        VALIDATOR.validate_stream("events.forward-pass-metrics", [later, first]),
        "fpm.counter-monotonic",
        "events.forward-pass-metrics",
        "/counter_id",
    )


def test_raw_frame_without_plane_is_checked_as_an_envelope() -> None:
    frames, _, _ = read_instances(str(RAW))
    frame = copy.deepcopy(frames[0])
    frame["decoded"]["payload"]["__msgpack__"]["worker_id"] = 7
    _only(
        VALIDATOR.validate("events.message", frame),
        "schema.type",
        "events.forward-pass-metrics",
        "/decoded/payload/__msgpack__/worker_id",
    )
