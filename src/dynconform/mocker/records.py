"""The discovery records a mock worker registers, in ai-dynamo 1.6.1's JSON.

A worker stores, each under its :func:`~dynconform.contracts.discovery_keys.format_key` key:
one ``Endpoint`` per served endpoint (``generate`` and the KV query source), one ``Model``
with the model deployment card, one ``EventChannel`` per published topic and one
``EventSource`` for ``kv-events``. Field order follows the captured records.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import blake3

from dynconform.contracts.discovery_keys import DiscoveryKey, KeyKind
from dynconform.mocker.config import EngineConfig
from dynconform.mocker.model_dir import MODEL_FILES, ModelDir

__all__ = [
    "MAX_JSON_SAFE_ID",
    "EndpointId",
    "build_card",
    "card_checksum",
    "endpoint_path",
    "endpoint_record",
    "event_channel_record",
    "key_of",
    "kv_event_source_record",
    "model_record",
    "new_instance_id",
    "new_publisher_id",
    "tcp_transport",
]

#: Publisher ids stay exactly representable as float64 in JSON readers.
MAX_JSON_SAFE_ID = 2**53 - 1

_CARD_FILES = {
    "model_info": ("hf_config_json", "config.json"),
    "tokenizer": ("hf_tokenizer_json", "tokenizer.json"),
    "prompt_formatter": ("hf_tokenizer_config_json", "tokenizer_config.json"),
    "gen_config": ("hf_generation_config_json", "generation_config.json"),
}
assert {name for _, name in _CARD_FILES.values()} == set(MODEL_FILES)


@dataclass(frozen=True, slots=True)
class EndpointId:
    """The namespace, component and endpoint a worker serves."""

    namespace: str = "dynamo"
    component: str = "backend"
    endpoint: str = "generate"

    def with_endpoint(self, endpoint: str) -> EndpointId:
        """The same component's ``endpoint``."""
        return EndpointId(self.namespace, self.component, endpoint)

    def scope(self) -> dict[str, Any]:
        """The event scope ``{"kind": "endpoint", "endpoint": {...}}`` of this endpoint."""
        return {"kind": "endpoint", "endpoint": self.as_json()}

    def as_json(self) -> dict[str, str]:
        """``{"namespace", "component", "name"}`` as event descriptors spell an endpoint."""
        return {"namespace": self.namespace, "component": self.component, "name": self.endpoint}


def new_instance_id() -> int:
    """A random instance id: a positive i64, as etcd lease ids are."""
    return secrets.randbits(63) or 1


def new_publisher_id() -> int:
    """A random event publisher id that JSON readers keep exact."""
    return secrets.randbits(64) & MAX_JSON_SAFE_ID or 1


def key_of(kind: KeyKind, ep: EndpointId, ident: int, topic: str | None = None) -> DiscoveryKey:
    """The discovery key of a record of ``kind`` for ``ep``."""
    return DiscoveryKey(kind, ep.namespace, ep.component, ep.endpoint, ident, topic)


def endpoint_path(instance_id: int, ep: EndpointId) -> str:
    """The request-plane path of ``ep`` on instance ``instance_id``
    (``{instance_id:x}/{namespace}/{component}/{endpoint}``)."""
    return f"{instance_id:x}/{ep.namespace}/{ep.component}/{ep.endpoint}"


def tcp_transport(host: str, port: int, instance_id: int, ep: EndpointId) -> dict[str, str]:
    """The ``tcp`` transport of an endpoint served on ``host:port``."""
    return {"tcp": f"{host}:{port}/{endpoint_path(instance_id, ep)}"}


def endpoint_record(ep: EndpointId, instance_id: int, transport: dict[str, str]) -> dict[str, Any]:
    """An ``Endpoint`` record (``v1/instances/...``)."""
    return {
        "type": "Endpoint",
        "component": ep.component,
        "endpoint": ep.endpoint,
        "namespace": ep.namespace,
        "instance_id": instance_id,
        "transport": transport,
        "device_type": "cuda",
        "request_plane_codec": "msgpack",
    }


def model_record(ep: EndpointId, instance_id: int, card: dict[str, Any]) -> dict[str, Any]:
    """A ``Model`` record (``v1/mdc/...``) holding the model deployment card."""
    return {
        "type": "Model",
        "namespace": ep.namespace,
        "component": ep.component,
        "endpoint": ep.endpoint,
        "instance_id": instance_id,
        "card_json": card,
    }


def event_channel_record(
    ep: EndpointId, topic: str, publisher_id: int, transport: dict[str, Any]
) -> dict[str, Any]:
    """An ``EventChannel`` record (``v1/event_channels/...``)."""
    return {
        "type": "EventChannel",
        "scope": ep.scope(),
        "topic": topic,
        "instance_id": publisher_id,
        "transport": transport,
    }


def kv_event_source_record(
    ep: EndpointId,
    publisher_id: int,
    worker_id: int,
    recovery_target: dict[str, Any],
    *,
    dp_rank: int = 0,
) -> dict[str, Any]:
    """The ``EventSource`` record of a worker's ``kv-events`` publisher."""
    return {
        "type": "EventSource",
        "scope": ep.scope(),
        "topic": "kv-events",
        "publisher_id": publisher_id,
        "metadata": {
            "kv_state_endpoint": ep.as_json(),
            "worker": {"worker_id": worker_id, "dp_rank": dp_rank},
            "publisher_id": publisher_id,
            "recovery_target": recovery_target,
        },
    }


def _checked_file(path: Path) -> dict[str, Any]:
    data = path.read_bytes()
    return {
        "path": str(path),
        "checksum": "blake3:" + blake3.blake3(data).hexdigest(),
        "size": len(data),
    }


def _slug(name: str) -> str:
    return "".join(c if c.isascii() and (c.isalnum() or c in "-_") else "_" for c in name.lower())


def build_card(model: ModelDir, config: EngineConfig, *, name: str | None = None) -> dict[str, Any]:
    """The model deployment card (``card_json``) of ``model`` served with ``config``."""
    display = name or model.name
    context = config.max_model_len or 0
    card: dict[str, Any] = {"display_name": display, "slug": _slug(display)}
    card["source_path"] = str(model.path)
    for field, (kind, filename) in _CARD_FILES.items():
        card[field] = {kind: _checked_file(model.path / filename)}
    card |= {
        "architectural_max_context_length": model.context_length,
        "context_length": context,
        "kv_cache_block_size": config.block_size,
        "migration_limit": 0,
        "model_type": "Chat | Completions",
        "model_input": "Tokens",
        "worker_type": "aggregated",
        "needs": [],
        "runtime_config": {
            "context_length": context,
            "total_kv_blocks": config.num_gpu_blocks,
            "max_num_seqs": config.max_num_seqs,
            "max_num_batched_tokens": config.max_num_batched_tokens,
            "tool_call_parser": None,
            "reasoning_parser": None,
            "tool_call_arguments_format": "json_string",
            "structural_tag_mode": "off",
            "structural_tag_scope": "auto",
            "structural_tag_schema": "auto",
            "exclude_tools_when_tool_choice_none": True,
            "data_parallel_start_rank": 0,
            "data_parallel_size": 1,
            "enable_local_indexer": True,
            "kv_event_publishing_enabled": True,
            "runtime_data": {"output_replay_consumer": True},
            "enable_eagle": False,
        },
        "media_decoder": None,
        "media_fetcher": None,
    }
    return card


def card_checksum(card: dict[str, Any]) -> str:
    """The ``mdc_sum`` a frontend sends with each request: BLAKE3 of the card's JSON."""
    data = json.dumps(card, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return blake3.blake3(data).hexdigest()
