"""The Prometheus metrics of the reference frontend (``dynamo_frontend_*``).

Every family the metrics registry marks as always present on a frontend is here, with the
registry's type and labels.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import prometheus_client
from prometheus_client import Counter, Gauge, Histogram

from dynconform.mocker._prometheus import add_uptime, new_registry

__all__ = ["FrontendMetrics"]

_LATENCY = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_TOKENS = (0, 16, 64, 256, 1024, 4096, 16384, 65536)


class FrontendMetrics:
    """The frontend's registry; :meth:`render` gives the text exposition."""

    def __init__(self, *, frontend_id: int, violations: Collection[str] = ()) -> None:
        self.violations = frozenset(violations)
        reg = self.registry = new_registry()
        model = ["model"]
        self.requests = Counter(
            "dynamo_frontend_requests_total",
            "Total number of LLM requests processed",
            ["endpoint", "error_type", "model", "request_type", "status"],
            registry=reg,
        )
        self.started = Counter(
            "dynamo_frontend_requests_started_total",
            "Total number of LLM requests started",
            ["endpoint", "model", "request_type"],
            registry=reg,
        )
        self.inflight = Gauge(
            "dynamo_frontend_inflight_requests", "Number of inflight requests", model, registry=reg
        )
        self.active = Gauge(
            "dynamo_frontend_active_requests",
            "Number of requests currently being handled by the frontend",
            model,
            registry=reg,
        )
        self.queued = Gauge(
            "dynamo_frontend_queued_requests",
            "Number of requests waiting for their first token",
            model,
            registry=reg,
        )
        if "metrics.required-families" not in self.violations:
            Gauge(
                "dynamo_frontend_disconnected_clients",
                "Number of disconnected clients",
                registry=reg,
            )
        self.duration = Histogram(
            "dynamo_frontend_request_duration_seconds",
            "Duration of LLM requests",
            model,
            buckets=_LATENCY,
            registry=reg,
        )
        self.ttft = Histogram(
            "dynamo_frontend_time_to_first_token_seconds",
            "Time to first token in seconds",
            model,
            buckets=_LATENCY,
            registry=reg,
        )
        self.itl = Histogram(
            "dynamo_frontend_inter_token_latency_seconds",
            "Inter-token latency in seconds",
            model,
            buckets=_LATENCY,
            registry=reg,
        )
        self.isl = Histogram(
            "dynamo_frontend_input_sequence_tokens",
            "Input sequence length in tokens",
            model,
            buckets=_TOKENS,
            registry=reg,
        )
        self.osl = Histogram(
            "dynamo_frontend_output_sequence_tokens",
            "Output sequence length in tokens",
            model,
            buckets=_TOKENS,
            registry=reg,
        )
        self.output_tokens = Counter(
            "dynamo_frontend_output_tokens_total",
            "Total number of output tokens generated",
            model,
            registry=reg,
        )
        self.cancellations = Counter(
            "dynamo_frontend_model_cancellation_total",
            "Total number of requests cancelled by the client",
            model,
            registry=reg,
        )
        self.card_gauges = {
            name: Gauge(f"dynamo_frontend_model_{name}", doc, model, registry=reg)
            for name, doc in (
                ("context_length", "Maximum context length in tokens for a worker"),
                ("kv_cache_block_size", "KV cache block size in tokens for a worker"),
                ("migration_limit", "Maximum number of request migrations allowed"),
                ("total_kv_blocks", "Total KV cache blocks available on a worker"),
                ("max_num_seqs", "Maximum number of sequences for a worker"),
                ("max_num_batched_tokens", "Maximum number of batched tokens for a worker"),
            )
        }
        add_uptime(reg, frontend_id)

    def model_seen(self, name: str, card: dict[str, Any]) -> None:
        """Publish a served model's card values and create its label sets."""
        runtime = card.get("runtime_config") or {}
        values = {
            "context_length": card.get("context_length"),
            "kv_cache_block_size": card.get("kv_cache_block_size"),
            "migration_limit": card.get("migration_limit"),
            "total_kv_blocks": runtime.get("total_kv_blocks"),
            "max_num_seqs": runtime.get("max_num_seqs"),
            "max_num_batched_tokens": runtime.get("max_num_batched_tokens"),
        }
        for key, value in values.items():
            if isinstance(value, int | float):
                self.card_gauges[key].labels(name).set(value)
        for family in (self.inflight, self.active, self.queued):
            family.labels(name)
        for histogram in (self.duration, self.ttft, self.itl, self.isl, self.osl):
            histogram.labels(name)
        self.output_tokens.labels(name)

    def render(self) -> str:
        return prometheus_client.generate_latest(self.registry).decode("utf-8")
