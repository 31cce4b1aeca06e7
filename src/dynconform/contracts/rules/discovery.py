"""Semantic rules of the discovery contracts: keys, leases, identities and the MDC."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from dynconform.contracts._rules import Issue, Rule, record_rule, stream_rule
from dynconform.contracts.discovery_keys import (
    U64_MAX,
    DiscoveryKeyError,
    KeyForm,
    encode_event_segment,
    parse_key,
)

U32_MAX = 2**32 - 1
#: Largest data-parallel rank range one worker may advertise (``ModelRuntimeConfig``).
MAX_DATA_PARALLEL_RANKS_PER_WORKER = 4096


def _entry_key(entry: dict[str, Any]) -> tuple[str, str, KeyForm]:
    """Where the entry's key is, its text and its form: ``path`` is the file backend's."""
    if "path" in entry:
        return "/path", entry["path"], "file"
    return "/key", entry["key"], "etcd"


@record_rule(
    "discovery.key-grammar",
    contract="discovery.entry",
    summary="An etcd key, or a file-store path, follows the discovery key grammar of its form.",
)
def key_grammar(entry: dict[str, Any]) -> Iterator[Issue]:
    pointer, text, form = _entry_key(entry)
    try:
        parse_key(text, form)
    except DiscoveryKeyError as exc:
        yield pointer, str(exc)


def _scope_names(scope: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    kind = scope.get("kind")
    if kind == "namespace":
        return scope.get("name"), None, None
    if kind == "component":
        return scope.get("namespace"), scope.get("component"), None
    endpoint = scope.get("endpoint") or {}
    return endpoint.get("namespace"), endpoint.get("component"), endpoint.get("name")


def _record_identity(record: dict[str, Any]) -> dict[str, tuple[str, Any]]:
    """What the key must repeat, as ``field -> (pointer in the record, value)``."""
    kind = record["type"]
    if kind in ("Endpoint", "Model"):
        out = {
            "namespace": ("/namespace", record["namespace"]),
            "component": ("/component", record["component"]),
            "endpoint": ("/endpoint", record["endpoint"]),
            "instance_id": ("/instance_id", record["instance_id"]),
        }
        if kind == "Model":
            out["model_suffix"] = ("/model_suffix", record.get("model_suffix"))
        return out
    ns, component, endpoint = _scope_names(record["scope"])
    id_field = "instance_id" if kind == "EventChannel" else "publisher_id"
    return {
        "namespace": ("/scope", ns),
        "component": ("/scope", component),
        "endpoint": ("/scope", endpoint),
        "topic": ("/topic", record["topic"]),
        "instance_id": (f"/{id_field}", record[id_field]),
    }


@record_rule(
    "discovery.key-matches-record",
    contract="discovery.entry",
    summary="The key names the record it holds: kind matches type; names, topic and id "
    "(instance id, or publisher id for event keys, in hex) match the record.",
)
def key_matches_record(entry: dict[str, Any]) -> Iterator[Issue]:
    pointer, text, form = _entry_key(entry)
    try:
        key = parse_key(text, form)
    except DiscoveryKeyError:
        return  # discovery.key-grammar reports it
    record = entry["value"]
    if record["type"] != key.record_type:
        yield (
            "/value/type",
            (f"a v1/{key.kind} key must hold a {key.record_type} record, not {record['type']}"),
        )
        return
    for field, (where, expected) in _record_identity(record).items():
        actual = getattr(key, field)
        if actual != expected:
            shown = f"{actual:x}" if field == "instance_id" else repr(actual)
            wanted = f"{expected:x}" if field == "instance_id" else repr(expected)
            yield "/value" + where, f"key {pointer[1:]} has {field} {shown}, the record {wanted}"


@record_rule(
    "discovery.lease-matches-instance",
    contract="discovery.entry",
    summary="An etcd key is held by the lease of the worker that wrote it: the lease id equals "
    "the Endpoint/Model instance_id and the KV event source's worker_id.",
)
def lease_matches_instance(entry: dict[str, Any]) -> Iterator[Issue]:
    if "lease" not in entry:
        return  # the file backend keeps keys alive by touching files, not by leases
    lease = int(entry["lease"])
    if lease > U64_MAX:
        yield "/lease", f"lease id {lease} is not a u64"
        return
    record = entry["value"]
    if record["type"] in ("Endpoint", "Model"):
        where, owner = "/value/instance_id", record["instance_id"]
    elif record["type"] == "EventSource":
        worker = record["metadata"].get("worker") if isinstance(record["metadata"], dict) else None
        if not isinstance(worker, dict) or not isinstance(worker.get("worker_id"), int):
            return
        where, owner = "/value/metadata/worker/worker_id", worker["worker_id"]
    else:
        return  # an event channel's id is its publisher id, not the worker's
    if owner != lease:
        yield where, f"held by lease {lease} but names worker {owner}"


class UniqueKeys:
    """Remembers every key of the snapshot and where it was first stored."""

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}

    def feed(self, instance: Any, index: int) -> Iterable[Issue]:
        field = "path" if "path" in instance else "key"
        text = instance[field]
        first = self._seen.setdefault(text, index)
        if first != index:
            return [(f"/{field}", f"{field} {text!r} already stored by entry #{first}")]
        return []

    def finish(self) -> Iterable[Issue]:
        return []


unique_keys = stream_rule(
    "discovery.unique-keys",
    contract="discovery.entry",
    summary="No key (or file-store path) appears twice in one snapshot of the store.",
)(UniqueKeys)


def scope_subject_prefix(scope: dict[str, Any]) -> str:
    """The NATS subject prefix of an event scope: ``namespace.{ns}[.component.{c}[...]]``."""
    names = _scope_names(scope)
    parts: list[str] = []
    for label, name in zip(("namespace", "component", "endpoint"), names, strict=True):
        if name is None:
            break
        parts += [label, encode_event_segment(name)]
    return ".".join(parts)


@record_rule(
    "discovery.event-channel-subject",
    contract="discovery.event-channel",
    summary="A NATS event channel publishes under the subject prefix derived from its scope.",
)
def event_channel_subject(record: dict[str, Any]) -> Iterator[Issue]:
    transport = record["transport"]
    if transport["kind"] != "Nats":
        return
    expected = scope_subject_prefix(record["scope"])
    actual = transport["config"]["subject_prefix"]
    if actual != expected:
        yield (
            "/transport/config/subject_prefix",
            f"subject prefix {actual!r} does not match the scope's {expected!r}",
        )


@record_rule(
    "discovery.event-source-identity",
    contract="discovery.event-source",
    summary="A KV event source's descriptor repeats the record's publisher_id, and its recovery "
    "target is an endpoint of the same worker.",
)
def event_source_identity(record: dict[str, Any]) -> Iterator[Issue]:
    if record["topic"] != "kv-events":
        return
    metadata = record["metadata"]
    if metadata["publisher_id"] != record["publisher_id"]:
        yield (
            "/metadata/publisher_id",
            (
                f"descriptor publisher_id {metadata['publisher_id']} differs from the record's "
                f"{record['publisher_id']}"
            ),
        )
    target = metadata.get("recovery_target")
    worker_id = metadata["worker"]["worker_id"]
    if isinstance(target, dict) and target["instance_id"] != worker_id:
        yield (
            "/metadata/recovery_target/instance_id",
            (f"recovery target instance {target['instance_id']} is not the worker {worker_id}"),
        )


@record_rule(
    "mdc.context-length-consistent",
    contract="discovery.mdc",
    summary="The card's context_length is the effective one: runtime_config.context_length, "
    "else architectural_max_context_length.",
)
def context_length_consistent(card: dict[str, Any]) -> Iterator[Issue]:
    runtime = card["runtime_config"].get("context_length")
    architectural = card.get("architectural_max_context_length")
    if isinstance(runtime, int):
        expected, source = runtime, "runtime_config.context_length"
    elif isinstance(architectural, int):
        expected, source = architectural, "architectural_max_context_length"
    else:
        return
    if card["context_length"] != expected:
        yield "/context_length", f"context_length {card['context_length']} != {source} {expected}"


def _label_problem(label: str) -> str | None:
    if not label.strip():
        return "must be non-empty"
    if label.strip() != label:
        return "must not have leading or trailing whitespace"
    if "=" in label:
        return "must not contain '='"
    return None


@record_rule(
    "mdc.runtime-config-consistent",
    contract="discovery.mdc",
    summary="runtime_config passes the worker's own validation: a data-parallel rank range of "
    "1..4096 ranks inside u32, well-formed topology labels, coherent KV-transfer settings.",
)
def runtime_config_consistent(card: dict[str, Any]) -> Iterator[Issue]:
    config = card["runtime_config"]
    base = "/runtime_config"
    size, start = config["data_parallel_size"], config["data_parallel_start_rank"]
    if size == 0:
        yield f"{base}/data_parallel_size", "data_parallel_size must be at least 1"
    elif size > MAX_DATA_PARALLEL_RANKS_PER_WORKER:
        yield (
            f"{base}/data_parallel_size",
            (
                f"data_parallel_size {size} exceeds the supported maximum "
                f"{MAX_DATA_PARALLEL_RANKS_PER_WORKER}"
            ),
        )
    elif start + size > U32_MAX:
        yield f"{base}/data_parallel_start_rank", "data-parallel rank range overflows u32"
    domains = config.get("topology_domains") or {}
    for domain, value in domains.items():
        for what, label in (("key", domain), ("value", value)):
            problem = _label_problem(label)
            if problem:
                yield f"{base}/topology_domains", f"topology_domains {what} {label!r} {problem}"
    domain = config.get("kv_transfer_domain")
    enforcement = config.get("kv_transfer_enforcement")
    weight = config.get("kv_transfer_preferred_weight")
    if domain is not None and domain not in domains:
        yield f"{base}/kv_transfer_domain", "kv_transfer_domain must be a key of topology_domains"
    if enforcement is not None and domain is None:
        yield f"{base}/kv_transfer_enforcement", "kv_transfer_enforcement needs kv_transfer_domain"
    if enforcement == "preferred" and weight is None:
        yield (
            f"{base}/kv_transfer_enforcement",
            ("preferred enforcement needs kv_transfer_preferred_weight"),
        )
    if weight is not None and enforcement != "preferred":
        yield (
            f"{base}/kv_transfer_preferred_weight",
            ("kv_transfer_preferred_weight is only allowed with preferred enforcement"),
        )


RULES: tuple[Rule, ...] = (
    key_grammar,
    key_matches_record,
    lease_matches_instance,
    unique_keys,
    event_channel_subject,
    event_source_identity,
    context_length_consistent,
    runtime_config_consistent,
)
