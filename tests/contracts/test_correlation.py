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
