"""The mock engine against the real ai-dynamo 1.6.1 capture (mocker with 16-token blocks, 48
blocks): same block hashes for the same token ids, and a replay of the captured requests
reproduces the worker's kv-events and forward-pass metrics."""

from __future__ import annotations

import base64
import functools
import itertools
import json
import math
import struct
from pathlib import Path
from typing import Any

import msgpack

from dynconform.contracts.hashing import chain_hashes
from dynconform.mocker import (
    EngineConfig,
    EngineEvent,
    ForwardPassMetrics,
    GenerateRequest,
    KvBlockManager,
    KvCleared,
    KvEvent,
    KvRemoved,
    KvStored,
    PrefillCompleted,
    Scheduler,
)

NATS = (
    Path(__file__).parents[1] / "fixtures" / "ai-dynamo-1.6.1" / "etcd_nats" / "nats_messages.jsonl"
)
BLOCK_SIZE, NUM_BLOCKS = 16, 48  # the captured mocker's --block-size and --num-gpu-blocks-override
CAPTURED = EngineConfig(block_size=BLOCK_SIZE, num_gpu_blocks=NUM_BLOCKS, speedup_ratio=0)


@functools.cache
def _messages() -> tuple[dict[str, Any], ...]:
    with NATS.open() as lines:
        return tuple(json.loads(line) for line in lines)


def _decode_frame(frame: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    """TwoPartCodec: header length, body length and checksum (u64 BE), JSON header, msgpack."""
    header_len, body_len, _checksum = struct.unpack(">QQQ", frame[:24])
    header = json.loads(frame[24 : 24 + header_len])
    body = msgpack.unpackb(frame[24 + header_len : 24 + header_len + body_len])
    return header, body


@functools.cache
def _requests() -> dict[str, GenerateRequest]:
    out: dict[str, GenerateRequest] = {}
    for message in _messages():
        if message["plane"] == "request_plane":
            header, body = _decode_frame(base64.b64decode(message["decoded"]["__bytes_b64__"]))
            out[header["id"]] = GenerateRequest.from_preprocessed(header["id"], body)
    return out


def _payloads(topic: str) -> list[Any]:
    return [
        m["decoded"]["payload"]["__msgpack__"]
        for m in _messages()
        if m["plane"] == "event_plane" and m["subject"].endswith("." + topic)
    ]


def _real_kv_events() -> list[dict[str, Any]]:
    return [event["event"] for payload in _payloads("kv-events") for event in payload]


def _kind(event: dict[str, Any]) -> tuple[str, int]:
    data = event["data"]
    if data == "cleared":
        return "cleared", 0
    if "stored" in data:
        return "stored", len(data["stored"]["blocks"])
    return "removed", len(data["removed"]["block_hashes"])


def _prompt_hashes() -> dict[int, int]:
    return {
        bh: th
        for request in _requests().values()
        for bh, th in chain_hashes(request.token_ids, BLOCK_SIZE)
    }


def _admission_order() -> list[str]:
    """Request ids in the order the worker admitted them (first stored event of a prompt)."""
    first_block = {
        chain_hashes(r.token_ids, BLOCK_SIZE)[0][0]: rid for rid, r in _requests().items()
    }
    order: list[str] = []
    for event in _real_kv_events():
        data = event["data"]
        if isinstance(data, dict) and "stored" in data and data["stored"]["parent_hash"] is None:
            rid = first_block.get(data["stored"]["blocks"][0]["block_hash"])
            if rid is not None and rid not in order:
                order.append(rid)
    return order


def test_request_frames_decode() -> None:
    requests = _requests()
    assert len(requests) == 120
    request = next(iter(requests.values()))
    assert request.eos_token_ids == (2,)
    assert 2 in request.stop_token_ids
    assert all(r.max_tokens for r in requests.values())


def test_block_hashes_equal_the_captured_ones() -> None:
    """Every prompt block of every captured request was stored by the real worker with the
    tokens_hash and block_hash that :func:`chain_hashes` gives for its token ids."""
    stored = {
        block["block_hash"]: block["tokens_hash"]
        for event in _real_kv_events()
        if isinstance(event["data"], dict) and "stored" in event["data"]
        for block in event["data"]["stored"]["blocks"]
    }
    prompt_blocks = _prompt_hashes()
    assert len(prompt_blocks) > 2000
    assert {bh: stored.get(bh) for bh in prompt_blocks} == prompt_blocks


def test_prompt_stored_events_equal_the_captured_ones() -> None:
    """For each captured prompt, a fresh block manager stores the same blocks as the real
    worker did when it first admitted that prompt."""
    requests = _requests()
    by_first = {chain_hashes(r.token_ids, BLOCK_SIZE)[0][0]: r for r in requests.values()}
    compared = 0
    for event in _real_kv_events():
        data = event["data"]
        if not (
            isinstance(data, dict) and "stored" in data and data["stored"]["parent_hash"] is None
        ):
            continue
        request = by_first.get(data["stored"]["blocks"][0]["block_hash"])
        if request is None:
            continue
        events: list[KvEvent] = []
        kv = KvBlockManager(BLOCK_SIZE, NUM_BLOCKS, sink=events.append)
        assert kv.allocate(kv.new_table(request.token_ids), len(request.token_ids))
        (mine,) = events
        assert isinstance(mine, KvStored)
        real_blocks = [(b["block_hash"], b["tokens_hash"]) for b in data["stored"]["blocks"]]
        mine_blocks = [(b.block_hash, b.tokens_hash) for b in mine.blocks]
        assert real_blocks[: len(mine_blocks)] == mine_blocks
        compared += 1
    assert compared >= len(requests)


def test_first_event_is_byte_for_byte_the_captured_one() -> None:
    real = _real_kv_events()[0]
    request = _requests()[_admission_order()[0]]
    events: list[KvEvent] = []
    kv = KvBlockManager(BLOCK_SIZE, NUM_BLOCKS, sink=events.append)
    assert kv.allocate(kv.new_table(request.token_ids), len(request.token_ids))
    assert events[0].to_wire(dp_rank=0) == real


@functools.cache
def _replay() -> tuple[list[EngineEvent], int]:
    """All captured requests, queued in the worker's admission order, run to completion."""
    events: list[EngineEvent] = []
    scheduler = Scheduler(
        CAPTURED, vocab_size=330, special_token_ids=frozenset({0, 1, 2}), sink=events.append
    )
    requests = _requests()
    for rid in _admission_order():
        scheduler.add(requests[rid])
    while scheduler.has_work:
        scheduler.step()
    return events, scheduler.num_preemptions


def _same(mine: dict[str, Any], real: dict[str, Any]) -> bool:
    if mine.keys() != real.keys():
        return False
    return all(
        math.isclose(mine[k], real[k], rel_tol=1e-12)
        if isinstance(real[k], float)
        else mine[k] == real[k]
        for k in real
    )


def test_replay_schedules_every_forward_pass_like_the_worker() -> None:
    events, preemptions = _replay()
    real = _payloads("forward-pass-metrics")
    busy = [
        p
        for p in real
        if p["scheduled_requests"]["num_prefill_requests"]
        or p["scheduled_requests"]["num_decode_requests"]
    ]
    mine = [e for e in events if isinstance(e, ForwardPassMetrics)]
    assert len(mine) == len(busy)
    for ours, theirs in zip(mine, busy, strict=True):
        assert _same(ours.scheduled.to_wire(), theirs["scheduled_requests"]), theirs["counter_id"]
    # Preemptions show as queued decode requests; count how often that number rose.
    queued = [p["queued_requests"]["num_decode_requests"] for p in real]
    assert preemptions == sum(b > a for a, b in itertools.pairwise(queued))
    assert preemptions > 0


def test_replay_emits_the_captured_kv_event_stream() -> None:
    """Same events in the same order and sizes; every hash that the captured event derives
    from prompt tokens is identical (hashes of generated tokens differ: they are random)."""
    events, _ = _replay()
    mine = [e.to_wire() for e in events if isinstance(e, (KvStored, KvRemoved, KvCleared))]
    real = _real_kv_events()
    assert [_kind(e) for e in mine] == [_kind(e) for e in real]
    prompt = _prompt_hashes()
    identical = 0
    for ours, theirs in zip(mine, real, strict=True):
        assert ours["event_id"] == theirs["event_id"]
        if "stored" in theirs["data"]:
            a, b = ours["data"]["stored"], theirs["data"]["stored"]
            if b["parent_hash"] in prompt:
                assert a["parent_hash"] == b["parent_hash"]
            pairs = zip(a["blocks"], b["blocks"], strict=True)
            assert all(x == y for x, y in pairs if y["block_hash"] in prompt)
            known = b["parent_hash"] in prompt or b["parent_hash"] is None
            known = known and all(block["block_hash"] in prompt for block in b["blocks"])
        else:
            a_hashes, b_hashes = (
                ours["data"]["removed"]["block_hashes"],
                theirs["data"]["removed"]["block_hashes"],
            )
            assert all(x == y for x, y in zip(a_hashes, b_hashes, strict=True) if y in prompt)
            known = all(h in prompt for h in b_hashes)
        if known:
            assert ours == theirs
            identical += 1
    assert identical > len(real) / 3


def test_replay_marks_each_prefill_once() -> None:
    events, _ = _replay()
    mine = [e.request_id for e in events if isinstance(e, PrefillCompleted)]
    real = [p["request_id"] for p in _payloads("active_sequences_events")]
    assert len(mine) == len(set(mine))
    assert set(mine) == set(real)
    assert all(p["data"] == "MarkPrefillCompleted" for p in _payloads("active_sequences_events"))
