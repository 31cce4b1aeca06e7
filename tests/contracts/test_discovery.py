"""Discovery contracts: captured keys and records, the key grammar, generated records, mutants."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dynconform.contracts import Catalog, Validator
from dynconform.contracts.discovery_keys import (
    KINDS,
    RECORD_TYPES,
    U64_MAX,
    DiscoveryKey,
    DiscoveryKeyError,
    KeyForm,
    format_key,
    key_form,
    parse_key,
)
from dynconform.contracts.rules import discovery as discovery_rules

CAPTURES = Path(__file__).parents[1] / "fixtures" / "ai-dynamo-1.6.1"
ETCD: list[dict[str, Any]] = json.loads((CAPTURES / "etcd_nats/etcd_kvs.json").read_text())
FILES: list[dict[str, Any]] = json.loads(
    (CAPTURES / "file_zmq/file_store_records.json").read_text()
)
CATALOG = Catalog.load()
VALIDATOR = Validator(CATALOG)
RECORD_CONTRACTS = {
    "Endpoint": "discovery.endpoint",
    "Model": "discovery.model",
    "EventChannel": "discovery.event-channel",
    "EventSource": "discovery.event-source",
}
CAPTURED_KEYS: list[tuple[str, KeyForm]] = [(e["key"], "etcd") for e in ETCD]
CAPTURED_KEYS += [(e["path"], "file") for e in FILES]


def _entry(entries: list[dict[str, Any]], kind: str, topic: str | None = None) -> dict[str, Any]:
    for entry in entries:
        value = entry["value"]
        if value["type"] == kind and (topic is None or value.get("topic") == topic):
            return copy.deepcopy(entry)
    raise LookupError(kind)


def _violations(contract: str, instance: Any) -> list[tuple[str, str]]:
    return [(v.rule, v.pointer) for v in VALIDATOR.validate(contract, instance).violations]


# ------------------------------------------------------------------ real captures


@pytest.mark.parametrize(("name", "entries"), [("etcd", ETCD), ("file", FILES)])
def test_every_captured_entry_validates(name: str, entries: list[dict[str, Any]]) -> None:
    report = VALIDATOR.validate_stream("discovery.entry", entries)
    assert report.ok, [str(v) for v in report.violations]
    assert report.instances == 8
    # each entry's value is also checked against its own contract, and the card against the MDC
    assert report.checked["discovery.entry"] == 8
    assert report.checked["discovery.event-channel"] == 4
    assert report.checked["discovery.event-source"] == 1
    assert report.checked["discovery.endpoint"] == 2
    assert report.checked["discovery.model"] == 1
    assert report.checked["discovery.mdc"] == 1


@pytest.mark.parametrize(
    "entry", ETCD + FILES, ids=[e.get("key", e.get("path")) for e in ETCD + FILES]
)
def test_every_captured_record_validates_as_record_and_as_its_type(entry: dict[str, Any]) -> None:
    value = entry["value"]
    assert _violations("discovery.record", value) == []
    assert _violations(RECORD_CONTRACTS[value["type"]], value) == []
    if value["type"] == "Model":
        assert _violations("discovery.mdc", value["card_json"]) == []


def test_captured_leases_are_the_worker_instance_ids() -> None:
    worker = _entry(ETCD, "Endpoint")["value"]["instance_id"]
    assert {int(e["lease"]) for e in ETCD} == {worker}
    # event channels are keyed by their publisher id, which is not the worker's id
    channels = [e["value"] for e in ETCD if e["value"]["type"] == "EventChannel"]
    assert all(c["instance_id"] != worker for c in channels)


@pytest.mark.parametrize(("text", "form"), CAPTURED_KEYS, ids=[k for k, _ in CAPTURED_KEYS])
def test_captured_keys_round_trip(text: str, form: KeyForm) -> None:
    key = parse_key(text)
    assert key_form(text) == form
    assert parse_key(text, form) == key
    assert format_key(key, form) == text
    other: KeyForm = "file" if form == "etcd" else "etcd"
    assert parse_key(format_key(key, other)) == key


def _reference_file_encoding(etcd_key: str) -> str:
    kind_prefix = "/".join(etcd_key.split("/", 2)[:2]) + "/"
    rest = etcd_key[len(kind_prefix) :]
    encoded = "".join(
        ch if ch.isascii() and ch.isalnum() else "".join(f"%{b:02X}" for b in ch.encode())
        for ch in rest
    )
    return kind_prefix + encoded


@pytest.mark.parametrize("entry", FILES, ids=[e["path"] for e in FILES])
def test_file_paths_percent_encode_every_non_alphanumeric_byte(entry: dict[str, Any]) -> None:
    path = entry["path"]
    etcd_form = format_key(parse_key(path), "etcd")
    assert _reference_file_encoding(etcd_form) == path
    assert "%2F" in path
    assert "/" not in path.split("/", 2)[2]


def test_file_encoding_covers_separator_underscore_and_dash() -> None:
    paths = " ".join(e["path"] for e in FILES)
    for escape in ("%5F", "%2D", "%2F"):  # '_', '-' and '/' are all encoded
        assert escape in paths
    assert "_" not in paths.replace("event_channels", "").replace("event_sources", "")


def test_bundled_samples_are_the_captures_and_validate() -> None:
    root = resources.files("dynconform.contracts") / "samples" / "ai-dynamo-1.6.1"
    for name, entries in (("etcd_kvs.json", ETCD), ("file_store_records.json", FILES)):
        bundled = json.loads((root / name).read_text(encoding="utf-8"))
        assert bundled == entries
        assert VALIDATOR.validate_stream("discovery.entry", bundled).ok


# ------------------------------------------------------------------ key grammar


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("instances/dynamo/backend/generate/1", "must start with 'v1/'"),
        ("v1/models/dynamo/backend/generate/1", "unknown key kind"),
        ("v1/instances/", "nothing after"),
        ("v1/instances/dynamo/backend/1", "got 3 segments"),
        ("v1/instances/dynamo//generate/1", "empty path segment"),
        ("v1/instances/dynamo/backend/generate/01", "lowercase hex"),
        ("v1/instances/dynamo/backend/generate/ABC", "lowercase hex"),
        ("v1/instances/dynamo/backend/generate/10000000000000000", "lowercase hex"),
        ("v1/mdc/dynamo/backend/generate/1/lora/x", "got 6 segments"),
        ("v1/event_channels/namespace/dynamo/topic/kv-events", "expected v1/event_channels"),
        ("v1/event_sources/namespace/a.b/topic/kv-events/1", "must be percent-encoded"),
        ("v1/event_sources/namespace/a%2eb/topic/kv-events/1", "not canonically encoded"),
        ("v1/event_channels/namespace/%FF/topic/t/1", "not UTF-8"),
        ("v1/instances/dynamo%2Fbackend%2Fgenerate%2F1%2", "not followed by two hex digits"),
        ("v1/instances/dynamo%2fbackend%2fgenerate%2f1", "not canonically encoded"),
        ("v1/instances/dynamo%2Fback_end%2Fgenerate%2F1", "'_' must be percent-encoded"),
        ("v1/instances/dynamo%2Fbackend%2Fgen%65rate%2F1", "not canonically encoded"),
    ],
)
def test_malformed_keys_are_rejected_with_a_clear_message(text: str, fragment: str) -> None:
    with pytest.raises(DiscoveryKeyError) as info:
        parse_key(text)
    assert isinstance(info.value, ValueError)
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"kind": "models"}, "unknown key kind"),
        ({"instance_id": -1}, "u64"),
        ({"instance_id": U64_MAX + 1}, "u64"),
        ({"namespace": ""}, "non-empty"),
        ({"component": "a/b"}, "must not contain '/'"),
        ({"topic": "kv-events"}, "no topic"),
        ({"model_suffix": "lora"}, "only mdc keys"),
        ({"namespace": "\ud800"}, "UTF-8"),
    ],
)
def test_invalid_discovery_keys_cannot_be_built(fields: dict[str, Any], fragment: str) -> None:
    base: dict[str, Any] = {
        "kind": "instances",
        "namespace": "dynamo",
        "component": "backend",
        "endpoint": "generate",
        "instance_id": 1,
    }
    with pytest.raises(DiscoveryKeyError) as info:
        DiscoveryKey(**(base | fields))
    assert fragment in str(info.value)


def test_event_keys_support_namespace_and_component_scopes() -> None:
    ns_key = DiscoveryKey("event_channels", "my.ns", None, None, 0xAB, "kv-events")
    assert format_key(ns_key) == "v1/event_channels/namespace/my%2Ens/topic/kv-events/ab"
    assert ns_key.scope == "namespace"
    comp_key = DiscoveryKey("event_sources", "ns", "router", None, 1, "t")
    assert format_key(comp_key) == "v1/event_sources/namespace/ns/component/router/topic/t/1"
    assert parse_key(format_key(comp_key)) == comp_key
    assert comp_key.scope == "component"
    with pytest.raises(DiscoveryKeyError, match="needs a component"):
        DiscoveryKey("event_sources", "ns", None, "generate", 1, "t")


def test_mdc_keys_carry_an_optional_model_suffix() -> None:
    key = DiscoveryKey("mdc", "dynamo", "backend", "generate", 255, model_suffix="my-lora")
    assert format_key(key) == "v1/mdc/dynamo/backend/generate/ff/my-lora"
    assert format_key(key, "file") == "v1/mdc/dynamo%2Fbackend%2Fgenerate%2Fff%2Fmy%2Dlora"
    assert parse_key(format_key(key, "file")) == key
    assert key.record_type == "Model"


_PLAIN = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="/"), min_size=1)
_ANY = st.text(st.characters(blacklist_categories=["Cs"]), min_size=1)
_U64 = st.integers(0, U64_MAX)


@st.composite
def discovery_keys(draw: st.DrawFn) -> DiscoveryKey:
    kind = draw(st.sampled_from(KINDS))
    if kind in ("instances", "mdc"):
        suffix = draw(st.none() | _PLAIN) if kind == "mdc" else None
        return DiscoveryKey(
            kind, draw(_PLAIN), draw(_PLAIN), draw(_PLAIN), draw(_U64), model_suffix=suffix
        )
    depth = draw(st.integers(0, 2))
    component = draw(_ANY) if depth >= 1 else None
    endpoint = draw(_ANY) if depth == 2 else None
    return DiscoveryKey(kind, draw(_ANY), component, endpoint, draw(_U64), draw(_ANY))


@given(discovery_keys(), st.sampled_from(["etcd", "file"]))
def test_generated_keys_round_trip_in_both_forms(key: DiscoveryKey, form: KeyForm) -> None:
    text = format_key(key, form)
    assert parse_key(text) == key
    assert key_form(text) == form
    assert format_key(parse_key(text), form) == text
    if form == "file":
        assert _reference_file_encoding(format_key(key, "etcd")) == text


# ------------------------------------------------------------------ generated records


def _segment(name: str) -> str:
    return "".join(
        ch if ch.isascii() and (ch.isalnum() or ch in "-_") else f"%{ord(ch):02X}" for ch in name
    )


_NAME = st.text("abcdefghijklmnopqrstuvwxyz0123456789-_.", min_size=1, max_size=10)
_FLAGS = ["Chat", "Completions", "Embedding", "TensorBased", "Prefill", "Images", "Audios"]


@st.composite
def scopes(draw: st.DrawFn) -> dict[str, Any]:
    ns, comp, ep = draw(_NAME), draw(_NAME), draw(_NAME)
    return draw(
        st.sampled_from(
            [
                {"kind": "namespace", "name": ns},
                {"kind": "component", "namespace": ns, "component": comp},
                {"kind": "endpoint", "endpoint": {"namespace": ns, "component": comp, "name": ep}},
            ]
        )
    )


def _scope_key_names(scope: dict[str, Any]) -> tuple[str, str | None, str | None]:
    if scope["kind"] == "namespace":
        return scope["name"], None, None
    if scope["kind"] == "component":
        return scope["namespace"], scope["component"], None
    ep = scope["endpoint"]
    return ep["namespace"], ep["component"], ep["name"]


@st.composite
def cards(draw: st.DrawFn) -> dict[str, Any]:
    card: dict[str, Any] = copy.deepcopy(_entry(ETCD, "Model")["value"]["card_json"])
    runtime = card["runtime_config"]
    architectural = draw(st.none() | st.integers(1, 2**20))
    runtime_context = draw(st.none() | st.integers(0, 2**20))
    if architectural is None:
        del card["architectural_max_context_length"]
    else:
        card["architectural_max_context_length"] = architectural
    if runtime_context is None:
        del runtime["context_length"]
        card["context_length"] = architectural if architectural is not None else 0
    else:
        runtime["context_length"] = runtime_context
        card["context_length"] = runtime_context
    card["kv_cache_block_size"] = draw(st.sampled_from([1, 16, 32, 64]))
    card["model_type"] = " | ".join(draw(st.lists(st.sampled_from(_FLAGS), unique=True)))
    card["worker_type"] = draw(st.sampled_from(["prefill", "decode", "encode", "aggregated"]))
    runtime["data_parallel_size"] = draw(st.integers(1, 4096))
    runtime["data_parallel_start_rank"] = draw(st.integers(0, 2**20))
    runtime["total_kv_blocks"] = draw(st.none() | st.integers(0, U64_MAX))
    if draw(st.booleans()):
        runtime["topology_domains"] = {"zone": draw(_NAME)}
        runtime["kv_transfer_domain"] = "zone"
        runtime["kv_transfer_enforcement"] = "preferred"
        runtime["kv_transfer_preferred_weight"] = draw(st.floats(0, 1))
    return card


@st.composite
def stored_records(draw: st.DrawFn) -> tuple[DiscoveryKey, int, dict[str, Any]]:
    """A key, the lease (worker id) that owns it and a record consistent with both."""
    worker = draw(st.integers(1, 2**63 - 1))
    kind = draw(st.sampled_from(KINDS))
    if kind in ("instances", "mdc"):
        ns, comp, ep = draw(_NAME), draw(_NAME), draw(_NAME)
        record: dict[str, Any] = {"namespace": ns, "component": comp, "endpoint": ep}
        record["instance_id"] = worker
        if kind == "instances":
            record["type"] = "Endpoint"
            record["transport"] = draw(
                st.sampled_from(
                    [
                        {"nats_tcp": f"{ns}_{comp}.{ep}-{worker:x}"},
                        {"tcp": f"192.0.2.2:1234/{worker:x}/{ns}/{comp}/{ep}"},
                    ]
                )
            )
            record["device_type"] = draw(st.sampled_from(["cpu", "cuda"]))
            record["request_plane_codec"] = draw(st.sampled_from(["json", "msgpack"]))
            return DiscoveryKey(kind, ns, comp, ep, worker), worker, record
        suffix = draw(st.none() | _NAME)
        record |= {"type": "Model", "card_json": draw(cards())}
        if suffix is not None:
            record["model_suffix"] = suffix
        return DiscoveryKey(kind, ns, comp, ep, worker, model_suffix=suffix), worker, record
    scope, topic, publisher = draw(scopes()), draw(_NAME), draw(_U64)
    scope_ns, scope_comp, scope_ep = _scope_key_names(scope)
    if kind == "event_channels":
        key = DiscoveryKey(kind, scope_ns, scope_comp, scope_ep, publisher, topic)
        prefix = ".".join(
            f"{label}.{_segment(name)}"
            for label, name in zip(
                ("namespace", "component", "endpoint"),
                (scope_ns, scope_comp, scope_ep),
                strict=True,
            )
            if name is not None
        )
        transport = draw(
            st.sampled_from(
                [
                    {"kind": "Nats", "config": {"subject_prefix": prefix}},
                    {"kind": "Zmq", "config": {"endpoint": "tcp://192.0.2.2:5557"}},
                ]
            )
        )
        record = {"type": "EventChannel", "scope": scope, "topic": topic}
        record |= {"instance_id": publisher, "transport": transport}
        return key, worker, record
    metadata = {
        "kv_state_endpoint": {
            "namespace": scope_ns,
            "component": scope_comp or "c",
            "name": scope_ep or "e",
        },
        "worker": {"worker_id": worker, "dp_rank": draw(st.integers(0, 7))},
        "publisher_id": publisher,
        "recovery_target": {
            "component": scope_comp or "c",
            "endpoint": f"worker_kv_query_source_{publisher:x}",
            "namespace": scope_ns,
            "instance_id": worker,
            "transport": {"nats_tcp": "subject"},
        },
    }
    record = {"type": "EventSource", "scope": scope, "topic": "kv-events"}
    record |= {"publisher_id": publisher, "metadata": metadata}
    return (
        DiscoveryKey(kind, scope_ns, scope_comp, scope_ep, publisher, "kv-events"),
        worker,
        record,
    )


@given(stored_records(), st.sampled_from(["etcd", "file"]))
def test_generated_valid_entries_validate(
    stored: tuple[DiscoveryKey, int, dict[str, Any]], form: str
) -> None:
    key, worker, record = stored
    if form == "etcd":
        entry = {"key": format_key(key), "lease": str(worker), "value": record}
    else:
        entry = {"path": format_key(key, "file"), "value": record}
    report = VALIDATOR.validate("discovery.entry", entry)
    assert report.ok, [str(v) for v in report.violations]
    assert report.checked[RECORD_CONTRACTS[record["type"]]] == 1
    assert _violations("discovery.record", record) == []


@given(cards())
def test_generated_cards_validate(card: dict[str, Any]) -> None:
    assert _violations("discovery.mdc", card) == []


# ------------------------------------------------------------------ mutants

_DELETE = object()
EP = _entry(ETCD, "Endpoint")
MODEL = _entry(ETCD, "Model")
CHANNEL = _entry(ETCD, "EventChannel", "kv-events")
SOURCE = _entry(ETCD, "EventSource")
FILE_EP = _entry(FILES, "Endpoint")
FILE_SOURCE = _entry(FILES, "EventSource")
FILE_CHANNEL = _entry(FILES, "EventChannel", "kv-events")
CARD = "/value/card_json"
RC = CARD + "/runtime_config"
ETCD_EP_KEY = "v1/instances/dynamo/backend/generate/"
FILE_EP_PATH = "v1/instances/dynamo%2Fbackend%2Fgenerate%2F"
CHANNEL_KEY = "v1/event_channels/namespace/dynamo/component/backend/endpoint/generate/topic/"


@dataclass(frozen=True)
class Mutant:
    """Set ``at`` (a JSON pointer) to ``value`` (or delete it); expect ``rule`` at ``where``."""

    name: str
    entry: dict[str, Any]
    at: str
    value: Any
    rule: str
    where: str | None = None

    def apply(self) -> dict[str, Any]:
        doc = copy.deepcopy(self.entry)
        *parents, last = self.at.strip("/").split("/")
        target: Any = doc
        for part in parents:
            target = target[part]
        if self.value is _DELETE:
            del target[last]
        else:
            target[last] = self.value
        return doc


M = Mutant
MUTANTS = [
    M("missing transport", EP, "/value/transport", _DELETE, "schema.required", "/value"),
    M("missing card", MODEL, CARD, _DELETE, "schema.required", "/value"),
    M("missing lease", EP, "/lease", _DELETE, "schema.required", ""),
    M("namespace not a string", EP, "/value/namespace", 7, "schema.type"),
    M("block size as string", MODEL, CARD + "/kv_cache_block_size", "16", "schema.type"),
    M("instance id over u64", EP, "/value/instance_id", U64_MAX + 1, "schema.maximum"),
    M("publisher id over u64", CHANNEL, "/value/instance_id", U64_MAX + 1, "schema.maximum"),
    M("negative worker id", SOURCE, "/value/metadata/worker/worker_id", -1, "schema.minimum"),
    M("lease not decimal", EP, "/lease", "0x694da2037aceaa07", "schema.pattern"),
    M(
        "two transports",
        EP,
        "/value/transport/tcp",
        "h:1/x",
        "schema.maxProperties",
        "/value/transport",
    ),
    M("unknown record type", EP, "/value/type", "Worker", "schema.enum"),
    M("unknown worker type", MODEL, CARD + "/worker_type", "mixed", "schema.enum"),
    M("model type not bitflags", MODEL, CARD + "/model_type", "chat,completions", "schema.pattern"),
    M(
        "checksum algorithm",
        MODEL,
        CARD + "/tokenizer/hf_tokenizer_json/checksum",
        "sha256:00",
        "schema.pattern",
    ),
    M(
        "scope without endpoint",
        CHANNEL,
        "/value/scope/endpoint",
        _DELETE,
        "schema.required",
        "/value/scope",
    ),
    M("nats config without prefix", CHANNEL, "/value/transport/config", {}, "schema.required"),
    M(
        "kv source without worker",
        SOURCE,
        "/value/metadata/worker",
        _DELETE,
        "schema.required",
        "/value/metadata",
    ),
    M("etcd and file form mixed", FILE_EP, "/lease", "1", "schema.additionalProperties", ""),
    M(
        "bad percent escape",
        FILE_EP,
        "/path",
        FILE_EP_PATH + "4300c7a4ec4251b%8",
        "discovery.key-grammar",
    ),
    M(
        "lowercase escape",
        FILE_EP,
        "/path",
        FILE_EP_PATH.lower() + "4300c7a4ec4251b8",
        "discovery.key-grammar",
    ),
    M("file path in etcd", EP, "/key", FILE_EP_PATH + "694da2037aceaa07", "discovery.key-grammar"),
    M(
        "decimal id in key",
        EP,
        "/key",
        ETCD_EP_KEY + "7587899083018119687",
        "discovery.key-grammar",
    ),
    M("uppercase hex id", EP, "/key", ETCD_EP_KEY + "694DA2037ACEAA07", "discovery.key-grammar"),
    M(
        "key id of another worker",
        EP,
        "/key",
        ETCD_EP_KEY + "12345",
        "discovery.key-matches-record",
        "/value/instance_id",
    ),
    M(
        "record under wrong kind",
        EP,
        "/key",
        "v1/mdc/dynamo/backend/generate/694da2037aceaa07",
        "discovery.key-matches-record",
        "/value/type",
    ),
    M("key names another endpoint", EP, "/value/endpoint", "clear", "discovery.key-matches-record"),
    M(
        "channel keyed by worker id",
        CHANNEL,
        "/key",
        CHANNEL_KEY + "kv-events/694da2037aceaa07",
        "discovery.key-matches-record",
        "/value/instance_id",
    ),
    M(
        "source topic differs",
        FILE_SOURCE,
        "/value/topic",
        "kv_metrics",
        "discovery.key-matches-record",
    ),
    M(
        "channel scope differs",
        FILE_CHANNEL,
        "/value/scope/endpoint/component",
        "router",
        "discovery.key-matches-record",
        "/value/scope",
    ),
    M("suffix not in key", MODEL, "/value/model_suffix", "lora-a", "discovery.key-matches-record"),
    M(
        "lease of another worker",
        EP,
        "/lease",
        "42",
        "discovery.lease-matches-instance",
        "/value/instance_id",
    ),
    M(
        "model of another lease",
        MODEL,
        "/lease",
        "42",
        "discovery.lease-matches-instance",
        "/value/instance_id",
    ),
    M(
        "source of another worker",
        SOURCE,
        "/lease",
        "42",
        "discovery.lease-matches-instance",
        "/value/metadata/worker/worker_id",
    ),
    M("lease over u64", EP, "/lease", str(U64_MAX + 1), "discovery.lease-matches-instance"),
    M(
        "nats prefix off scope",
        CHANNEL,
        "/value/transport/config/subject_prefix",
        "namespace.dynamo.component.backend",
        "discovery.event-channel-subject",
    ),
    M(
        "descriptor publisher id",
        SOURCE,
        "/value/metadata/publisher_id",
        1,
        "discovery.event-source-identity",
    ),
    M(
        "recovery target elsewhere",
        SOURCE,
        "/value/metadata/recovery_target/instance_id",
        1,
        "discovery.event-source-identity",
    ),
    M(
        "stale context length",
        MODEL,
        CARD + "/context_length",
        4096,
        "mdc.context-length-consistent",
    ),
    M(
        "no data-parallel ranks",
        MODEL,
        RC + "/data_parallel_size",
        0,
        "mdc.runtime-config-consistent",
    ),
    M("too many ranks", MODEL, RC + "/data_parallel_size", 4097, "mdc.runtime-config-consistent"),
    M(
        "ranks overflow u32",
        MODEL,
        RC + "/data_parallel_start_rank",
        2**32 - 1,
        "mdc.runtime-config-consistent",
    ),
    M(
        "transfer domain unknown",
        MODEL,
        RC + "/kv_transfer_domain",
        "zone",
        "mdc.runtime-config-consistent",
    ),
    M(
        "topology label with '='",
        MODEL,
        RC + "/topology_domains",
        {"zone": "a=b"},
        "mdc.runtime-config-consistent",
    ),
]


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.name for m in MUTANTS])
def test_mutant_is_rejected_with_its_rule(mutant: Mutant) -> None:
    found = _violations("discovery.entry", mutant.apply())
    where = mutant.at if mutant.where is None else mutant.where
    assert (mutant.rule, where) in found, found
    assert {rule for rule, _ in found} == {mutant.rule}, found


def test_duplicate_keys_in_one_snapshot_are_rejected() -> None:
    report = VALIDATOR.validate_stream("discovery.entry", [*ETCD, copy.deepcopy(ETCD[5])])
    assert [(v.rule, v.pointer, v.index) for v in report.violations] == [
        ("discovery.unique-keys", "/key", 8)
    ]
    assert "entry #5" in report.violations[0].message


def test_every_discovery_rule_has_a_failing_mutant() -> None:
    rule_ids = {rule.id for rule in discovery_rules.RULES}
    covered = {m.rule for m in MUTANTS} | {"discovery.unique-keys"}
    assert rule_ids <= covered
    assert set(RECORD_TYPES.values()) == set(RECORD_CONTRACTS)


def test_record_contract_rejects_mutants_directly() -> None:
    record = copy.deepcopy(CHANNEL["value"])
    record["transport"] = {"kind": "Kafka", "config": {}}
    assert _violations("discovery.record", record) == [("schema.enum", "/transport/kind")]
    card = copy.deepcopy(MODEL["value"]["card_json"])
    card["runtime_config"]["kv_transfer_enforcement"] = "preferred"
    assert _violations("discovery.mdc", card) == [
        ("mdc.runtime-config-consistent", "/runtime_config/kv_transfer_enforcement"),
        ("mdc.runtime-config-consistent", "/runtime_config/kv_transfer_enforcement"),
    ]
