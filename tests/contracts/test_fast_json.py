"""The fast path against the reference validator on JSON text (discovery records, JSON views)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_fast_frames import _paths

from dynconform.contracts import Validator
from dynconform.contracts.fast import FastValidator

CAPTURES = Path(__file__).parents[1] / "fixtures" / "ai-dynamo-1.6.1"
VALIDATOR = Validator()
FAST = FastValidator(VALIDATOR)

ENTRIES = json.loads((CAPTURES / "etcd_nats" / "etcd_kvs.json").read_text())
ENTRIES += json.loads((CAPTURES / "file_zmq" / "file_store_records.json").read_text())
RECORDS = [entry["value"] for entry in ENTRIES]
CONTRACTS = {
    "Endpoint": "discovery.endpoint",
    "Model": "discovery.model",
    "EventChannel": "discovery.event-channel",
    "EventSource": "discovery.event-source",
}


def assert_same(contract: str, value: Any) -> dict[str, Any]:
    text = json.dumps(value)
    expected = VALIDATOR.validate(contract, json.loads(text)).to_dict()
    assert FAST.validate_json(contract, text).to_dict() == expected
    return expected


@pytest.mark.parametrize("record", RECORDS, ids=[r["type"] for r in RECORDS])
def test_real_records_match_the_reference(record: dict[str, Any]) -> None:
    assert assert_same("discovery.record", record)["valid"]
    assert assert_same(CONTRACTS[record["type"]], record)["valid"]


def test_real_entries_as_a_stream_match_the_reference() -> None:
    texts = [json.dumps(entry) for entry in ENTRIES]
    expected = VALIDATOR.validate_stream("discovery.entry", [json.loads(t) for t in texts])
    actual = FAST.validate_json_stream("discovery.entry", texts)
    assert actual.to_dict() == expected.to_dict()
    assert actual.checked["discovery.mdc"] == 2


def test_json_views_of_the_event_plane_match_the_reference() -> None:
    lines = (CAPTURES / "etcd_nats" / "nats_messages.jsonl").read_text().splitlines()[:400]
    expected = VALIDATOR.validate_stream("events.message", [json.loads(line) for line in lines])
    actual = FAST.validate_json_stream("events.message", lines)
    assert actual.to_dict() == expected.to_dict()
    assert expected.checked["events.kv-events"] > 0


WEIRD = [None, -1, 0, 1.0, 2**64, "", "x", [], {}, True, {"kind": "Nats"}]


@st.composite
def mutated_records(draw: st.DrawFn) -> dict[str, Any]:
    record = copy.deepcopy(draw(st.sampled_from(RECORDS)))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(record)[1:]))
        parent: Any = record
        for step in path[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        elif action == "add" and isinstance(parent, dict):
            parent[draw(st.sampled_from(["extra", "type", "kind", "endpoint"]))] = draw(
                st.sampled_from(WEIRD)
            )
        else:
            parent[path[-1]] = draw(st.sampled_from(WEIRD))
        if draw(st.integers(0, 4)) == 0:
            record["type"] = draw(st.sampled_from(list(CONTRACTS)))
    return record


@given(mutated_records())
def test_mutated_records_match_the_reference(record: dict[str, Any]) -> None:
    assert_same("discovery.record", record)
    kind = record.get("type")
    if isinstance(kind, str) and kind in CONTRACTS:
        assert_same(CONTRACTS[kind], record)


def test_mutations_are_mostly_invalid_and_report_schema_rules() -> None:
    rules: set[str] = set()

    @given(mutated_records())
    def collect(record: dict[str, Any]) -> None:
        rules.update(assert_same("discovery.record", record)["violations_by_rule"])

    collect()
    assert {"schema.type", "schema.required"} <= rules


def test_kv_events_with_integral_floats_match_the_reference() -> None:
    # JSON Schema integers admit 1.0; the KV hash chain is then hashed the slow way.
    from dynconform.contracts.hashing import block_hash

    def stored(event_id: int, parent: float | None, blocks: list[tuple[int, float]]) -> Any:
        return {
            "worker_id": 1,
            "storage_tier": "device",
            "residency_domain": "worker",
            "event": {
                "event_id": event_id,
                "dp_rank": 0,
                "data": {
                    "stored": {
                        "parent_hash": parent,
                        "start_position": None,
                        "blocks": [
                            {"block_hash": h, "tokens_hash": t, "mm_extra_info": None}
                            for h, t in blocks
                        ],
                    }
                },
            },
        }

    second = block_hash(5, 7)
    good = [stored(1, None, [(5.0, 5.0), (second, 7.0)]), stored(2, 5.0, [(block_hash(5, 9), 9.0)])]
    report = assert_same("events.kv-events", good)
    assert report["valid"], report
    bad = [stored(1, None, [(5.0, 5.0), (second + 1, 7.0)])]
    report = assert_same("events.kv-events", bad)
    assert report["violations_by_rule"] == {"kv.block-hash-chain": 1}
