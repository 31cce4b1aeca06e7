"""The fast path against the reference validator on raw event-plane frames.

Every comparison is of whole reports: verdict, every violation (contract, rule, JSON pointer,
message, index) in order, and the instances checked per contract.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dynconform.contracts import RuleRegistry, Validator, default_rules, hashing
from dynconform.contracts._io import RawFrame, iter_raw_frames, raw_frame_view
from dynconform.contracts.event_subjects import TOPIC_CONTRACTS, format_subject
from dynconform.contracts.fast import FastValidator

CAPTURES = Path(__file__).parents[1] / "fixtures" / "ai-dynamo-1.6.1"
RAW = CAPTURES / "etcd_nats" / "event_plane_raw.bin"
U64 = 2**64 - 1
VALIDATOR = Validator()
FAST = FastValidator(VALIDATOR)


@functools.cache
def _captured() -> tuple[RawFrame, ...]:
    with RAW.open("rb") as stream:
        return tuple(iter_raw_frames(stream))


def assert_same(frames: list[RawFrame], fast: FastValidator = FAST) -> dict[str, Any]:
    """The fast report equals the reference report; returns it."""
    views = [raw_frame_view(f) for f in frames]
    expected = fast.reference.validate_stream("events.message", views).to_dict()
    assert fast.validate_frames(frames).to_dict() == expected
    return expected


# -- the real capture ----------------------------------------------------------------------


def test_every_captured_frame_takes_the_fast_path_and_matches_the_reference() -> None:
    frames = list(_captured())
    report = assert_same(frames)
    assert report["valid"]
    assert report["instances"] == len(frames) == 3444
    run = FAST.frames()
    run.feed_all((f.subject, f.data) for f in frames)
    assert run.fallbacks == 0
    assert run.finish().ok


def test_each_topic_of_the_capture_alone_matches_the_reference() -> None:
    # Stream rules see other histories when frames of one topic are validated alone.
    for topic in TOPIC_CONTRACTS:
        frames = [f for f in _captured() if f.subject.endswith("." + topic)]
        assert frames
        assert_same(frames[:400])


def test_windows_of_the_capture_report_what_the_reference_reports() -> None:
    # A window starts mid-stream: sequence, event-id and residency rules fire.
    frames = _captured()
    kv = [i for i, f in enumerate(frames) if f.subject.endswith(".kv-events")]
    found = set()
    for start in kv[5:200:12]:
        report = assert_same(list(frames[start : start + 40]))
        found |= set(report["violations_by_rule"])
    assert "kv.removed-after-stored" in found


# -- mutations of envelopes and payloads ---------------------------------------------------

WEIRD: list[Any] = [
    None,
    -1,
    0,
    1.0,
    1.5,
    2**63,
    U64,
    True,
    "",
    "x",
    b"\x01",
    b"\xc1",
    [],
    [1, 2],
    {},
    {"k": 1},
    {1: 2},
]


def _pack(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True, strict_types=False)


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            out += _paths(item, (*path, i))
    return out


def _set(root: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    parent = root
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    return root


def _delete(root: Any, path: tuple[Any, ...]) -> Any:
    if not path:
        return root
    parent = root
    for step in path[:-1]:
        parent = parent[step]
    del parent[path[-1]]
    return root


@st.composite
def mutated(draw: st.DrawFn, value: Any) -> Any:
    """``value`` with one part deleted, replaced, extended or duplicated."""
    value = copy.deepcopy(value)
    path = draw(st.sampled_from(_paths(value)))
    kind = draw(st.sampled_from(["delete", "replace", "add", "duplicate", "empty"]))
    target: Any = value
    for step in path:
        target = target[step]
    if kind == "delete" and path:
        return _delete(value, path)
    if kind == "add" and isinstance(target, dict):
        key = draw(st.sampled_from(["extra", 7, "stored", "removed", "__bytes_b64__"]))
        target[key] = draw(st.sampled_from(WEIRD))
        return value
    if kind == "duplicate" and isinstance(target, list) and target:
        target.append(copy.deepcopy(target[0]))
        return value
    if kind == "empty" and isinstance(target, list | dict):
        return _set(value, path, type(target)())
    return _set(value, path, draw(st.sampled_from(WEIRD)))


def _decode(frame: RawFrame) -> tuple[dict[str, Any], Any]:
    envelope = msgpack.unpackb(frame.data, raw=False, strict_map_key=False)
    return envelope, msgpack.unpackb(envelope["payload"], raw=False, strict_map_key=False)


def _frame(subject: str, envelope: Any, payload: Any | None = None) -> RawFrame:
    if payload is not None:
        envelope = {**envelope, "payload": _pack(payload)}
    return RawFrame(subject, _pack(envelope))


@st.composite
def frame_mutation(draw: st.DrawFn, frame: RawFrame) -> RawFrame:
    """One frame changed at the byte, envelope or payload level, or in its subject."""
    try:
        envelope, payload = _decode(frame)
        levels = ["payload", "payload", "envelope", "subject", "bytes"]
    except Exception:
        levels = ["subject", "bytes"]
    where = draw(st.sampled_from(levels))
    if where == "payload":
        return _frame(frame.subject, envelope, draw(mutated(payload)))
    if where == "envelope":
        changed = draw(mutated({k: v for k, v in envelope.items() if k != "payload"}))
        if isinstance(changed, dict) and draw(st.booleans()):
            special = [b"\xc1", _pack(payload) + b"\x00", "text", {"__msgpack__": payload}]
            changed["payload"] = draw(st.sampled_from(special))
        elif isinstance(changed, dict):
            changed["payload"] = envelope["payload"]
        return _frame(frame.subject, changed)
    if where == "subject":
        subject = draw(
            st.sampled_from(
                [
                    "",
                    "namespace.dynamo.kv-events",
                    frame.subject.replace("generate", "gen erate"),
                    frame.subject.replace("dynamo", "dyn%2Eamo"),
                    frame.subject.replace("dynamo", "dyn%2eamo"),
                    frame.subject.rsplit(".", 1)[0] + ".kv_metrics",
                    frame.subject + ".x",
                ]
            )
        )
        return RawFrame(subject, frame.data)
    data = bytearray(frame.data or b"\x80")
    position = draw(st.integers(0, len(data) - 1))
    if draw(st.booleans()):
        data[position] = draw(st.integers(0, 255))
        return RawFrame(frame.subject, bytes(data))
    return RawFrame(frame.subject, bytes(data[:position]))


@given(st.data())
def test_mutated_windows_of_the_capture_match_the_reference(data: st.DataObject) -> None:
    frames = list(_captured())
    start = data.draw(st.integers(0, len(frames) - 12))
    window = frames[start : start + data.draw(st.integers(1, 12))]
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.integers(0, len(window) - 1))
        window[i] = data.draw(frame_mutation(window[i]))
    if len(window) > 1 and data.draw(st.booleans()):
        i = data.draw(st.integers(0, len(window) - 2))
        window[i], window[i + 1] = window[i + 1], window[i]
    assert_same(window)


def test_each_kind_of_captured_payload_is_judged_alike_after_every_single_mutation() -> None:
    # Exhaustive over one frame per topic: replace each value with each weird value.
    seen: dict[str, RawFrame] = {}
    for frame in _captured():
        seen.setdefault(frame.subject.rsplit(".", 1)[1], frame)
    invalid = 0
    for frame in seen.values():
        envelope, payload = _decode(frame)
        for weird in (None, -1, 1.0, "x", 2**63, {}):
            frames = [
                _frame(frame.subject, envelope, _set(copy.deepcopy(payload), path, weird))
                for path in _paths(payload)[:40]
            ]
            report = assert_same(frames)
            invalid += len({v["index"] for v in report["violations"]})
    assert invalid > 300


# -- generated streams ---------------------------------------------------------------------

_u64 = st.integers(0, U64)
_u32 = st.integers(0, 2**32 - 1)
_small = st.integers(0, 50)
_number = st.integers(0, 10**6) | st.floats(0, 1e6, allow_nan=False)
_TIERS = ("device", "host_pinned", "disk", "external")


def _fpm(worker: str, counter: int) -> st.SearchStrategy[dict[str, Any]]:
    fields = [
        "num_prefill_requests",
        "sum_prefill_tokens",
        "var_prefill_length",
        "num_decode_requests",
        "sum_decode_kv_tokens",
        "var_decode_kv_tokens",
    ]
    queued = st.fixed_dictionaries(
        {f: (_number if f.startswith("var") else _small) for f in fields}
    )
    scheduled = st.fixed_dictionaries(
        {
            f: (_number if f.startswith("var") else _small)
            for f in [*fields, "sum_prefill_kv_tokens"]
        }
    )
    return st.fixed_dictionaries(
        {
            "version": st.just(1),
            "worker_id": st.just(worker),
            "dp_rank": st.integers(0, 1),
            "counter_id": st.just(counter),
            "wall_time": _number,
            "scheduled_requests": scheduled,
            "queued_requests": queued,
        }
    )


_kv_metrics = st.fixed_dictionaries(
    {
        "worker_id": _u64,
        "dp_rank": st.integers(0, 2),
        "active_decode_blocks": st.none() | _u64,
        "active_prefill_tokens": st.none() | _u64,
        "kv_used_blocks": st.none() | _u64,
    }
)

_sequence_event = st.fixed_dictionaries(
    {
        "request_id": st.text(max_size=8),
        "worker": st.fixed_dictionaries({"worker_id": _u64, "dp_rank": _u32}),
        "data": st.sampled_from(["Free", "MarkPrefillCompleted"])
        | st.fixed_dictionaries(
            {
                "AddRequest": st.fixed_dictionaries(
                    {
                        "token_sequence": st.none() | st.lists(_u64, max_size=4),
                        "track_prefill_tokens": st.booleans(),
                        "expected_output_tokens": st.none() | _u32,
                        "prefill_load_hint": st.none()
                        | st.fixed_dictionaries(
                            {
                                "initial_effective_prefill_tokens": _u64,
                                "expected_prefill_duration": st.none()
                                | st.fixed_dictionaries(
                                    {"secs": _u64, "nanos": st.integers(0, 999_999_999)}
                                ),
                            }
                        ),
                    }
                )
            }
        ),
        "router_id": _u64,
        "lora_name": st.none() | st.text(max_size=5),
    }
)
_active_sequences = _sequence_event | st.fixed_dictionaries(
    {"events": st.lists(_sequence_event, min_size=1, max_size=3)}
)


@st.composite
def _kv_batch(draw: st.DrawFn, state: dict[str, Any]) -> list[dict[str, Any]]:
    """Router events of one worker; hashes chain and removals follow stores (mostly)."""
    batch = []
    for _ in range(draw(st.integers(1, 3))):
        state["event_id"] += draw(st.sampled_from([1, 1, 1, 0, 2]))
        tier = draw(st.sampled_from(_TIERS[:2]))
        held = state["held"].setdefault(tier, [])
        kind = draw(st.sampled_from(["stored", "stored", "removed", "cleared"]))
        if kind == "cleared":
            data: Any = "cleared"
            state["held"].clear()
        elif kind == "removed":
            pool = held or [draw(_u64)]
            gone = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3, unique=True))
            data = {"removed": {"block_hashes": gone}}
            held[:] = [h for h in held if h not in gone]
        else:
            parent = draw(st.none() | st.sampled_from(held)) if held else None
            blocks, previous = [], parent
            for _ in range(draw(st.integers(0, 4))):
                tokens = draw(_u64)
                block = hashing.block_hash(previous, tokens)
                if draw(st.integers(0, 9)) == 0:
                    block = draw(_u64)  # a broken chain
                mm = None
                if draw(st.integers(0, 4)) == 0:
                    mm = {"mm_objects": [{"mm_hash": draw(_u64), "offsets": [[0, 4]]}]}
                blocks.append({"block_hash": block, "tokens_hash": tokens, "mm_extra_info": mm})
                previous = block
            held += [b["block_hash"] for b in blocks]
            start = draw(st.none() | _u32)
            data = {"stored": {"parent_hash": parent, "start_position": start, "blocks": blocks}}
        event: dict[str, Any] = {
            "worker_id": state["worker"],
            "storage_tier": tier,
            "residency_domain": draw(st.sampled_from(["worker", "cache_owner"])),
            "event": {"event_id": state["event_id"], "data": data, "dp_rank": 0},
        }
        if draw(st.integers(0, 5)) == 0:
            event["session_id"] = "s"
            event["state_source"] = draw(st.sampled_from([None, "x", {"k": [1]}]))
        batch.append(event)
    return batch


@st.composite
def event_streams(draw: st.DrawFn) -> list[RawFrame]:
    """A stream of envelopes of all four topics from two publishers, with occasional gaps."""
    workers = [draw(_u64) for _ in range(2)]
    sequences: dict[tuple[int, str], int] = {}
    kv_state = {"worker": workers[0], "event_id": draw(_small), "held": {}}
    counters = {w: draw(_small) for w in workers}
    frames = []
    for _ in range(draw(st.integers(1, 25))):
        topic = draw(st.sampled_from(list(TOPIC_CONTRACTS)))
        publisher = draw(st.sampled_from(workers))
        if topic == "kv-events":
            payload: Any = draw(_kv_batch(kv_state))
        elif topic == "forward-pass-metrics":
            counters[publisher] += draw(st.sampled_from([1, 1, 2, 0]))
            payload = draw(_fpm(str(publisher), counters[publisher]))
        elif topic == "kv_metrics":
            payload = draw(_kv_metrics)
        else:
            payload = draw(_active_sequences)
        key = (publisher, topic)
        previous = sequences.get(key)
        step = draw(st.sampled_from([1, 1, 1, 1, 2, 0]))
        sequences[key] = draw(_small) if previous is None else previous + step
        envelope = {
            "publisher_id": publisher % 2**53,
            "sequence": sequences[key],
            "published_at": draw(_u64),
            "topic": topic,
            "payload": _pack(payload),
        }
        subject = format_subject("dynamo", topic, component="backend", endpoint="generate")
        frames.append(RawFrame(subject, _pack(envelope)))
    return frames


@given(event_streams())
def test_generated_streams_match_the_reference(frames: list[RawFrame]) -> None:
    assert_same(frames)
    run = FAST.frames()
    run.feed_all((f.subject, f.data) for f in frames)
    assert run.fallbacks == 0  # valid frames never need the reference schema check


def _raw_map(*pairs: tuple[bytes, bytes]) -> bytes:
    """A msgpack map written by hand (it may repeat keys)."""
    return bytes([0x80 | len(pairs)]) + b"".join(k + v for k, v in pairs)


def _crafted() -> list[tuple[str, RawFrame]]:
    frame = next(f for f in _captured() if f.subject.endswith(".kv_metrics"))
    envelope, payload = _decode(frame)
    subject = frame.subject
    body = {k: v for k, v in envelope.items() if k != "payload"}
    fields = [(_pack(k), _pack(v)) for k, v in envelope.items()]
    metrics = [(_pack(k), _pack(v)) for k, v in payload.items()]
    ext = msgpack.ExtType(5, b"x")
    return [
        ("duplicate key, last valid", RawFrame(subject, _raw_map(*fields, fields[1]))),
        (
            "duplicate key, last invalid",
            RawFrame(subject, _raw_map(*fields, (_pack("sequence"), _pack("x")))),
        ),
        (
            "duplicate payload key",
            _frame(
                subject, envelope | {"payload": _raw_map(*metrics, (_pack("dp_rank"), _pack(-1)))}
            ),
        ),
        ("ext value in the payload", _frame(subject, envelope, payload | {"extra": ext})),
        ("ext as a field", _frame(subject, envelope, payload | {"dp_rank": ext})),
        ("bin in the payload", _frame(subject, envelope, payload | {"extra": b"\x01"})),
        ("bin as a field", _frame(subject, envelope, payload | {"dp_rank": b"\x01"})),
        ("int key in the payload", _frame(subject, envelope, payload | {1: 2})),
        ("int key in the envelope", _frame(subject, envelope | {1: 2})),
        ("payload as str", _frame(subject, body | {"payload": "text"})),
        (
            "payload as a literal view",
            _frame(subject, body | {"payload": {"__msgpack__": payload}}),
        ),
        ("payload as nested bin", _frame(subject, envelope | {"payload": _pack(_pack(payload))})),
        (
            "payload with trailing bytes",
            _frame(subject, envelope | {"payload": _pack(payload) + b"\x00"}),
        ),
        ("envelope with trailing bytes", RawFrame(subject, frame.data + b"\x00")),
        ("envelope as a list", RawFrame(subject, _pack([1, 2]))),
        ("empty data", RawFrame(subject, b"")),
        (
            "invalid UTF-8 topic",
            RawFrame(subject, frame.data.replace(b"kv_metrics", b"kv_metric\xff")),
        ),
        (
            "unknown topic",
            _frame(subject.replace("kv_metrics", "other"), envelope | {"topic": "other"}),
        ),
        ("large ints", _frame(subject, envelope | {"sequence": U64, "publisher_id": 2**53})),
        ("float sequence", _frame(subject, envelope | {"sequence": 1.0})),
        ("bool sequence", _frame(subject, envelope | {"sequence": True})),
    ]


@pytest.mark.parametrize(("name", "frame"), _crafted(), ids=[name for name, _ in _crafted()])
def test_crafted_frames_match_the_reference(name: str, frame: RawFrame) -> None:
    start = next(f for f in _captured() if f.subject.endswith(".kv_metrics"))
    report = assert_same([start, frame, frame])
    assert report["instances"] == 3


@given(event_streams(), st.data())
def test_generated_streams_with_mutations_match_the_reference(
    frames: list[RawFrame], data: st.DataObject
) -> None:
    i = data.draw(st.integers(0, len(frames) - 1))
    frames[i] = data.draw(frame_mutation(frames[i]))
    assert_same(frames)


def _edit(frames: list[RawFrame], topic: str, change: Callable[[dict[str, Any], Any], bool]) -> int:
    """Apply ``change(envelope, payload)`` to the first frame of ``topic`` it accepts."""
    for i, frame in enumerate(frames):
        envelope, payload = _decode(frame)
        if envelope["topic"] == topic and change(envelope, payload):
            frames[i] = _frame(frame.subject, envelope, payload)
            return i
    raise AssertionError(f"no {topic} frame to change")


def _stored(payload: Any, blocks: int = 1) -> Any:
    data = payload[0]["event"]["data"]
    if isinstance(data, dict) and len(data.get("stored", {}).get("blocks", [])) >= blocks:
        return data["stored"]
    return None


def _later_removal(envelope: dict[str, Any], payload: Any) -> bool:
    data = payload[0]["event"]["data"]
    if isinstance(data, dict) and "removed" in data and envelope["sequence"] > 20:
        data["removed"]["block_hashes"].append(12345)
        return True
    return False


def _break_chain(envelope: dict[str, Any], payload: Any) -> bool:
    stored = _stored(payload, blocks=3)
    if stored is not None:
        stored["blocks"][1]["block_hash"] ^= 1
    return stored is not None


def _unknown_parent(envelope: dict[str, Any], payload: Any) -> bool:
    stored = _stored(payload)
    if stored is not None and stored["parent_hash"] is not None:
        stored["parent_hash"] = 424242
        return True
    return False


def _restart(field: str, after: int) -> Callable[[dict[str, Any], Any], bool]:
    def change(envelope: dict[str, Any], payload: Any) -> bool:
        target = payload[0]["event"] if field == "event_id" else payload
        if envelope["sequence"] > after:
            target[field] = 0
            return True
        return False

    return change


BREAKS: dict[str, tuple[str, Callable[[dict[str, Any], Any], bool]]] = {
    "kv.sequence-monotonic": (
        "kv_metrics",
        lambda e, p: e.update(sequence=e["sequence"] + 3) is None,
    ),
    "kv.block-hash-chain": ("kv-events", _break_chain),
    "kv.event-id-monotonic": ("kv-events", _restart("event_id", 30)),
    "kv.parent-stored": ("kv-events", _unknown_parent),
    "kv.removed-after-stored": ("kv-events", _later_removal),
    "fpm.counter-monotonic": ("forward-pass-metrics", _restart("counter_id", 30)),
}


@pytest.mark.parametrize("rule", sorted(BREAKS))
def test_each_events_rule_breaks_alike_on_the_fast_path(rule: str) -> None:
    frames = list(_captured()[:700])
    topic, change = BREAKS[rule]
    index = _edit(frames, topic, change)
    report = assert_same(frames)
    assert rule in report["violations_by_rule"]
    assert min(v["index"] for v in report["violations"] if v["rule"] == rule) >= index
    run = FAST.frames()
    run.feed_all((f.subject, f.data) for f in frames)
    assert run.fallbacks == 0  # schema-valid frames: the rules ran on decoded Structs


def test_a_subject_that_names_another_topic_is_reported_alike() -> None:
    frames = list(_captured()[:50])
    i = next(i for i, f in enumerate(frames) if f.subject.endswith(".kv_metrics"))
    frames[i] = RawFrame(frames[i].subject.replace("kv_metrics", "kv-events"), frames[i].data)
    report = assert_same(frames)
    assert report["violations_by_rule"] == {"events.subject-matches-topic": 1}


# -- other rule sets -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "dropped",
    [
        set(),
        {"kv.block-hash-chain", "kv.sequence-monotonic"},
        {"kv.parent-stored", "events.topic-known", "events.subject-matches-topic"},
        {"kv.removed-after-stored", "fpm.counter-monotonic", "mdc.block-size-consistent"},
    ],
)
def test_a_subset_of_the_rules_gives_the_same_report(dropped: set[str]) -> None:
    registry = RuleRegistry(r for r in default_rules() if r.id not in dropped)
    fast = FastValidator(Validator(rules=registry))
    frames = list(_captured()[1000:1300])
    report = assert_same(frames, fast)
    assert not set(report["violations_by_rule"]) & dropped


def test_an_unknown_rule_on_an_events_contract_runs_on_the_reference_path() -> None:
    from dynconform.contracts import record_rule

    @record_rule("test.every-envelope", contract="events.envelope", summary="flags all")
    def every(envelope: Any) -> Any:
        yield "/topic", f"seen {envelope['topic']}"

    registry = default_rules()
    registry.add(every)
    fast = FastValidator(Validator(rules=registry))
    frames = list(_captured()[:50])
    report = assert_same(frames, fast)
    assert report["violations_by_rule"] == {"test.every-envelope": 50}
    run = fast.frames()
    run.feed_all((f.subject, f.data) for f in frames)
    assert run.fallbacks == 50  # no fast equivalent: every frame took the reference path


def test_stored_blocks_reach_the_block_size_correlation_alike() -> None:
    # The fast path feeds mdc.block-size-consistent the block hashes that
    # the reference correlator collects from the same KV events.
    from dynconform.contracts.rules.correlation import BlockSizeConsistent

    frames = list(_captured())
    run = FAST.frames()
    run.feed_all((f.subject, f.data) for f in frames)
    fast = run.flow.correlators["mdc.block-size-consistent"][1]
    reference = BlockSizeConsistent()
    for frame in frames:
        envelope = raw_frame_view(frame)["decoded"]
        if envelope["topic"] == "kv-events":
            list(reference.observe("events.kv-events", envelope["payload"]["__msgpack__"], 0))
    assert isinstance(fast, BlockSizeConsistent)
    assert fast.stored == reference.stored
    assert len(fast.stored) > 2000


def test_a_finished_run_is_freed_without_the_cyclic_gc() -> None:
    # A replay makes one run per pass: a reference cycle in a run kept each pass's rule state
    # alive until a full collection, and the RSS of a long replay crept up.
    import gc

    frames = [(f.subject, f.data) for f in _captured()]
    FAST.frames().feed_all(frames[:10])  # compile and warm up outside the measurement
    gc.collect()
    gc.disable()
    try:
        run = FAST.frames()
        run.feed_all(frames)
        assert run.finish().ok
        del run
        assert gc.collect() == 0
    finally:
        gc.enable()
