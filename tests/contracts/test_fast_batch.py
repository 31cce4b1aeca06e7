"""Batched validation equals frame-by-frame validation: the same violations, in the same
order, and the same rule state afterwards, however a stream is cut into batches."""

from __future__ import annotations

import copy
import struct
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_fast_frames import (
    FAST,
    _captured,
    _decode,
    _frame,
    _kv_batch,
    _pack,
    _paths,
    _set,
    assert_same,
    event_streams,
    frame_mutation,
)

from dynconform.contracts import hashing
from dynconform.contracts._io import RawFrame
from dynconform.contracts._validate import _Run
from dynconform.contracts.fast import FrameRun
from dynconform.contracts.fast._rules import ForwardPassRunner, KvEventsRunner, pair_hashes

KV_RULES = FAST.rules.for_contract("events.kv-events")
KV_TYPE = FAST.compiled("events.kv-events", "msgpack")
assert KV_TYPE is not None
DECODE_KV = msgspec.msgpack.Decoder(KV_TYPE.type).decode


def _runner() -> KvEventsRunner:
    """The KV rules with the state of a run of their own."""
    return KvEventsRunner(KV_RULES, _Run(FAST.reference, "events.kv-events"))


@st.composite
def kv_payloads(draw: st.DrawFn) -> list[Any]:
    """Payloads of two workers (their events interleaved), with the odd cleared cache,
    empty store, unknown parent, removal of a block never stored and broken chain."""
    states = [
        {"worker": w, "event_id": draw(st.integers(0, 9)), "held": {}}
        for w in draw(st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=2, unique=True))
    ]
    payloads = []
    for _ in range(draw(st.integers(1, 30))):
        batch = draw(_kv_batch(draw(st.sampled_from(states))))
        if draw(st.integers(0, 6)) == 0:
            other = draw(_kv_batch(draw(st.sampled_from(states))))
            batch = [*batch, *other]  # one payload, two workers
        for event in batch:
            data = event["event"]["data"]
            if isinstance(data, dict) and "stored" in data and draw(st.integers(0, 7)) == 0:
                data["stored"]["parent_hash"] = draw(st.integers(0, 2**64 - 1))
            if draw(st.integers(0, 9)) == 0:
                event["event"]["dp_rank"] = 1
        payloads.append(DECODE_KV(_pack(batch)))
    return payloads


def _state(runner: KvEventsRunner) -> tuple[Any, ...]:
    correlator = runner.correlator
    return runner.last, runner.held, None if correlator is None else correlator.stored


@given(kv_payloads(), st.data())
def test_kv_rules_over_a_batch_find_what_they_find_payload_by_payload(
    payloads: list[Any], data: st.DataObject
) -> None:
    one = _runner()
    expected = {j: f for j, p in enumerate(payloads) if (f := one.run(p))}
    batched = _runner()
    found: dict[int, Any] = {}
    start = 0
    while start < len(payloads):
        size = data.draw(st.integers(1, len(payloads) - start))
        part = batched.run_batch(payloads[start : start + size])
        found.update({start + j: f for j, f in part.items()})
        start += size
    assert found == expected
    assert _state(batched) == _state(one)


def test_a_batch_of_the_captured_kv_events_is_valid_and_feeds_the_correlation() -> None:
    plan = FAST.frames()._plan
    assert plan is not None
    payloads = [
        DECODE_KV(plan.envelope_decoder.decode(f.data).payload)
        for f in _captured()
        if f.subject.endswith(".kv-events")
    ]
    one, batched = _runner(), _runner()
    assert not any(one.run(p) for p in payloads)
    assert batched.run_batch(payloads) == {}
    assert _state(batched) == _state(one)
    assert len(_state(one)[2]) > 2000


class _FrameByFrame(FrameRun):
    """The frame-by-frame path only."""

    def _batch(self, chunk: list[tuple[str, bytes]]) -> bool:
        return False


class _Batched(FrameRun):
    """Records whether each batch took the batch path."""

    outcomes: list[bool]

    def _batch(self, chunk: list[tuple[str, bytes]]) -> bool:
        taken = super()._batch(chunk)
        self.__dict__.setdefault("outcomes", []).append(taken)
        return taken


def _report(frames: list[RawFrame], cuts: list[int], *, batched: bool = True) -> tuple[Any, ...]:
    run = FAST.frames(publishers=True)
    if not batched:
        run = _FrameByFrame(FAST, run._plan, None, publishers=True)
    pairs = [(f.subject, f.data) for f in frames]
    start = 0
    for cut in [*cuts, len(pairs)]:
        run.feed_all(pairs[start:cut])
        start = cut
    report = run.finish().to_dict()
    return report, run.fallbacks, run.publishers, run.first_sequences


@given(event_streams(), st.data())
def test_any_cut_of_a_stream_gives_the_report_of_one_feed(
    frames: list[RawFrame], data: st.DataObject
) -> None:
    if data.draw(st.booleans()):
        i = data.draw(st.integers(0, len(frames) - 1))
        frames[i] = data.draw(frame_mutation(frames[i]))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(frames)), max_size=4)))
    expected = _report(frames, [], batched=False)
    assert _report(frames, []) == expected
    assert _report(frames, cuts) == expected
    assert _report(frames, list(range(1, len(frames)))) == expected  # batches of one


def test_the_capture_cut_anywhere_gives_the_same_report() -> None:
    frames = list(_captured())
    whole = _report(frames, [])
    assert whole == _report(frames, [], batched=False)
    assert whole[0]["valid"]
    assert sum(whole[2].values()) == len(frames)
    assert _report(frames, [1, 2, 3, 100, 1000, 1001, 2500]) == whole
    broken = copy.copy(frames)
    a, b = [i for i, f in enumerate(frames) if f.subject.endswith(".kv-events")][100:102]
    broken[a], broken[b] = broken[b], broken[a]  # two KV events out of order
    expected = _report(broken, [], batched=False)
    assert not expected[0]["valid"]
    assert _report(broken, [b, 2000]) == _report(broken, []) == expected


def test_every_single_mutation_is_judged_alike_in_a_batch() -> None:
    # Each mutated frame goes with a valid one of its topic: the batch path judges the pair
    # unless a frame needs the frame-by-frame path (then that path judges both).
    seen: dict[str, RawFrame] = {}
    for frame in _captured():
        seen.setdefault(frame.subject.rsplit(".", 1)[1], frame)
    for frame in seen.values():
        envelope, payload = _decode(frame)
        for weird in (None, -1, 1.0, "x", "", "1" * 21, 2**63, {}):
            for path in _paths(payload)[:40]:
                changed = _set(copy.deepcopy(payload), path, weird)
                assert_same([frame, _frame(frame.subject, envelope, changed)])


def test_a_worker_id_off_its_pattern_is_rejected_in_a_batch() -> None:
    frames = [f for f in _captured() if f.subject.endswith(".forward-pass-metrics")][:20]
    envelope, payload = _decode(frames[7])
    frames[7] = _frame(frames[7].subject, envelope, payload | {"worker_id": "w-1"})
    report = assert_same(frames)
    assert [(v["index"], v["rule"]) for v in report["violations"]] == [(7, "schema.pattern")]
    run = FAST.frames()
    run.feed_all([(f.subject, f.data) for f in frames])
    assert run.fallbacks == 1  # the batch went frame by frame, the bad frame to the reference


def test_one_topic_on_two_subjects_keeps_frame_order() -> None:
    # A publisher whose frames alternate between two scopes: its sequence and KV state must
    # see them in stream order, not subject by subject.
    kv = [f for f in _captured() if f.subject.endswith(".kv-events")][:60]
    other = kv[0].subject.replace("namespace.dynamo.", "namespace.other.")
    frames = [RawFrame(other, f.data) if i % 3 == 1 else f for i, f in enumerate(kv)]
    expected = _report(frames, [], batched=False)
    assert expected[0]["valid"]
    assert _report(frames, []) == expected
    batched = _Batched(FAST, FAST.frames()._plan, None)
    batched.feed_all([(f.subject, f.data) for f in frames])
    assert batched.outcomes == [True]  # taken by the batch path
    frames[10], frames[11] = frames[11], frames[10]
    expected = _report(frames, [], batched=False)
    assert "kv.sequence-monotonic" in expected[0]["violations_by_rule"]
    assert _report(frames, []) == expected


U64 = st.integers(0, 2**64 - 1)


@given(st.lists(st.tuples(st.one_of(st.none(), U64), U64), max_size=300))
def test_pair_hashes_are_the_block_hashes(pairs: list[tuple[int | None, int]]) -> None:
    """Both ways of hashing (one pair at a time below 64 blocks, a buffer at once above)."""
    parents = [0 if parent is None else parent for parent, _ in pairs]
    tokens = [t for _, t in pairs]
    expected = [hashing.block_hash(parent, t) for parent, t in zip(parents, tokens, strict=True)]
    assert pair_hashes(parents, tokens) == expected
    assert pair_hashes([*parents, 7], tokens) == expected  # a spare parent is ignored


@pytest.mark.parametrize("bad", [-1, 2**64, 1.0, None])
@pytest.mark.parametrize("size", [1, 100])
def test_pair_hashes_reject_what_is_not_a_u64(bad: Any, size: int) -> None:
    parents = [5] * size
    parents[size // 2] = bad
    with pytest.raises((TypeError, struct.error)):
        pair_hashes(parents, [3] * size)


def _kv_frames() -> list[RawFrame]:
    return [f for f in _captured() if f.subject.endswith(".kv-events")]


def _kv_with_sequence(frame: RawFrame, sequence: int, payload: Any) -> RawFrame:
    envelope, _ = _decode(frame)
    return _frame(frame.subject, {**envelope, "sequence": sequence}, payload)


@pytest.mark.parametrize("batched", [True, False])
def test_a_forgotten_worker_is_not_judged_on_blocks_it_held_before(batched: bool) -> None:
    frames = _kv_frames()
    half = len(frames) // 2
    run = FAST.frames()

    if not batched:  # frame by frame: the runner's run() instead of run_batch()
        run._batch = lambda chunk: False  # type: ignore[method-assign]

    def feed(part: list[RawFrame]) -> None:
        run.feed_all([(f.subject, f.data) for f in part])

    feed(frames[:half])
    (worker,) = {event["worker_id"] for f in frames for event in _decode(f)[1]}
    kv = run.flow.runners["events.kv-events"]
    assert isinstance(kv, KvEventsRunner)
    assert kv.held
    assert kv.last
    run.forget_worker(worker)
    assert not kv.held
    assert not kv.last
    feed(frames[half:])  # removes blocks stored in the first half: not judged
    assert run.finish().ok

    # Not forgotten, the same removals are violations (the check can fail).
    strict = FAST.frames()
    strict.feed_all([(f.subject, f.data) for f in frames[:1]])
    strict.feed_all([(f.subject, f.data) for f in frames[half:]])
    assert strict.violations["kv.removed-after-stored"] > 0


def test_a_forgotten_worker_is_judged_again_after_it_clears_its_cache() -> None:
    frames = _kv_frames()
    envelope, payload = _decode(frames[0])
    worker = payload[0]["worker_id"]
    run = FAST.frames()
    run.feed_all([(f.subject, f.data) for f in frames[:10]])
    run.forget_worker(worker)
    sequence = envelope["sequence"] + 10
    cleared = [{**payload[0], "event": {**payload[0]["event"], "data": "cleared"}}]
    cleared[0]["event"]["event_id"] = 10**6
    removal = [
        {
            **payload[0],
            "event": {
                "event_id": 10**6 + 1,
                "dp_rank": 0,
                "data": {"removed": {"block_hashes": [12345]}},
            },
        }
    ]
    for offset, body in enumerate([cleared, removal]):
        frame = _kv_with_sequence(frames[0], sequence + offset, body)
        run.feed(frame.subject, frame.data)
    assert run.violations == {"kv.removed-after-stored": 1}


def test_forgetting_a_worker_drops_its_forward_pass_counters() -> None:
    run = FAST.frames()
    run.feed_all([(f.subject, f.data) for f in _captured()])
    counters = run.flow.runners["events.forward-pass-metrics"]
    assert isinstance(counters, ForwardPassRunner)
    (worker,) = {int(name) for name, _ in counters.last}
    run.forget_worker(worker + 1)  # another worker: nothing dropped
    assert counters.last
    run.forget_worker(worker)
    assert not counters.last
