"""Rules across families, on the real etcd + NATS capture of one ai-dynamo 1.6.1 run."""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

from dynconform.contracts import Validator, read_instances

CAPTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ai-dynamo-1.6.1" / "etcd_nats"


@functools.cache
def _run_inputs() -> tuple[list[Any], list[Any]]:
    entries = json.loads((CAPTURES / "etcd_kvs.json").read_text())
    messages, _, _ = read_instances(str(CAPTURES / "nats_messages.jsonl"))
    return entries, messages


def _with_block_size(entries: list[Any], size: int) -> list[Any]:
    changed = copy.deepcopy(entries)
    for entry in changed:
        if entry["value"]["type"] == "Model":
            entry["value"]["card_json"]["kv_cache_block_size"] = size
    return changed


def test_real_run_prompts_are_stored_with_the_mdc_block_size() -> None:
    entries, messages = _run_inputs()
    report = Validator().validate_many([("discovery.entry", entries), ("events.message", messages)])
    assert report.ok, [str(v) for v in report.violations[:5]]
    assert report.checked["request-plane.preprocessed-request"] == 120
    assert report.checked["discovery.mdc"] == 1


def test_mdc_announcing_another_block_size_is_caught() -> None:
    entries, messages = _run_inputs()
    report = Validator().validate_many(
        [("discovery.entry", _with_block_size(entries, 32)), ("events.message", messages)]
    )
    (violation,) = report.violations
    assert violation.rule == "mdc.block-size-consistent"
    assert violation.contract == "discovery.mdc"
    assert "hashed with kv_cache_block_size 32" in violation.message
    assert "all of them match block size 16" in violation.message


def test_without_an_mdc_nothing_is_judged() -> None:
    _, messages = _run_inputs()
    assert Validator().validate_stream("events.message", messages[:50]).ok


def _correlator_with_prompt(block_size: int, tokens: list[int]) -> Any:
    from dynconform.contracts.rules.correlation import BlockSizeConsistent

    correlator = BlockSizeConsistent()
    mdc = {"display_name": "m", "kv_cache_block_size": block_size}
    list(correlator.observe("discovery.mdc", mdc, None))
    request = {"model": "m", "token_ids": tokens}
    list(correlator.observe("request-plane.preprocessed-request", request, None))
    return correlator


def test_stored_blocks_are_bounded_and_only_whole_misses_count_after_forgetting(
    monkeypatch: Any,
) -> None:
    from dynconform.contracts.hashing import chain_hashes
    from dynconform.contracts.rules import correlation

    monkeypatch.setattr(correlation, "MAX_STORED", 64)
    tokens = list(range(64))  # 4 blocks of 16
    prompt_blocks = [h for h, _ in chain_hashes(tokens, 16)]

    # The prompt's first two blocks were stored long ago, then 100 other blocks: forgotten.
    reused = _correlator_with_prompt(16, tokens)
    reused.add_stored(prompt_blocks[:2])
    for start in range(0, 100, 10):
        reused.add_stored(list(range(10**6 + start, 10**6 + start + 10)))
    reused.add_stored(prompt_blocks[2:])
    assert len(reused.stored) <= 64
    assert reused.forgotten
    assert not reused.holds(prompt_blocks[0])
    assert list(reused.finish()) == []  # a partial miss may be a forgotten prefix

    # A wrong block size misses every block of the prompt: still reported after forgetting.
    wrong = _correlator_with_prompt(32, tokens)
    for start in range(0, 100, 10):
        wrong.add_stored(list(range(10**6 + start, 10**6 + start + 10)))
    wrong.add_stored(prompt_blocks)
    assert wrong.forgotten
    ((pointer, message),) = list(wrong.finish())
    assert pointer == "/kv_cache_block_size"
    assert "2 of 2 prompt blocks hashed with kv_cache_block_size 32" in message
    assert "all of them match block size 16" in message


def test_without_forgetting_a_partial_miss_is_reported() -> None:
    from dynconform.contracts.hashing import chain_hashes

    tokens = list(range(64))
    prompt_blocks = [h for h, _ in chain_hashes(tokens, 16)]
    correlator = _correlator_with_prompt(16, tokens)
    correlator.add_stored(prompt_blocks[1:])
    assert not correlator.forgotten
    ((_, message),) = list(correlator.finish())
    assert message.startswith("1 of 4 prompt blocks")
