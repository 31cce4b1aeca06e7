"""Batched validation equals frame-by-frame validation: the same violations, in the same
order, and the same rule state afterwards, however a stream is cut into batches."""

from __future__ import annotations

import copy
from typing import Any

import msgspec
from hypothesis import given
from hypothesis import strategies as st
from test_fast_frames import FAST, _captured, _kv_batch, _pack, event_streams, frame_mutation

from dynconform.contracts._io import RawFrame
from dynconform.contracts.fast import FrameRun
from dynconform.contracts.fast._rules import KvEventsRunner, RunState

KV_RULES = FAST.rules.for_contract("events.kv-events")
KV_TYPE = FAST.compiled("events.kv-events", "msgpack")
assert KV_TYPE is not None
DECODE_KV = msgspec.msgpack.Decoder(KV_TYPE.type).decode


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
    stored = runner._sink()
    return runner.last, runner.held, None if stored is None else set(stored)


@given(kv_payloads(), st.data())
def test_kv_rules_over_a_batch_find_what_they_find_payload_by_payload(
    payloads: list[Any], data: st.DataObject
) -> None:
    one = KvEventsRunner(KV_RULES, RunState())
    expected = {j: f for j, p in enumerate(payloads) if (f := one.run(p, 0))}
    batched = KvEventsRunner(KV_RULES, RunState())
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
    one, batched = KvEventsRunner(KV_RULES, RunState()), KvEventsRunner(KV_RULES, RunState())
    assert not any(one.run(p, 0) for p in payloads)
    assert batched.run_batch(payloads) == {}
    assert _state(batched) == _state(one)
    assert len(_state(one)[2]) > 2000


class _FrameByFrame(FrameRun):
    """The frame-by-frame path only."""

    def _batch(self, chunk: list[tuple[str, bytes]]) -> bool:
        return False


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
