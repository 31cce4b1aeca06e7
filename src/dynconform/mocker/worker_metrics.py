"""The Prometheus metrics of a mock worker's system server (``dynamo_component_*``).

Names, types and labels follow the metrics registry (``metrics_registry.json``): every family
the registry marks as always present on a worker is here, with its required labels.
"""

from __future__ import annotations

import re
from collections.abc import Collection

import prometheus_client
from prometheus_client import Counter, Gauge, Histogram

from dynconform.mocker._prometheus import add_uptime, new_registry

__all__ = ["WorkerMetrics"]

_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_INF_BUCKET = re.compile(
    r'^(dynamo_component_request_duration_seconds_bucket\{[^}]*le="\+Inf"[^}]*\}) (\S+)$',
    re.MULTILINE,
)


class WorkerMetrics:
    """Counters of one worker endpoint; :meth:`render` gives the text exposition."""

    def __init__(
        self,
        *,
        namespace: str,
        component: str,
        endpoint: str,
        worker_id: int,
        model_name: str,
        violations: Collection[str] = (),
    ) -> None:
        self.violations = frozenset(violations)
        self.registry = new_registry()
        hex_id = f"{worker_id:x}"
        names = ["dynamo_component", "dynamo_endpoint", "dynamo_namespace", "worker_id"]
        values = [component, endpoint, namespace, hex_id]
        reg = self.registry

        def counter(name: str, doc: str) -> Counter:
            return Counter(name, doc, names, registry=reg)

        def engine_gauge(name: str, doc: str) -> Gauge:
            return Gauge(name, doc, ["engine", "model_name"], registry=reg).labels("0", model_name)

        requests_doc = "Total number of requests processed by work handler"
        if "metrics.required-labels" in self.violations:
            self.requests = Counter(
                "dynamo_component_requests_total", requests_doc, names[:3], registry=reg
            ).labels(*values[:3])
        else:
            self.requests = counter("dynamo_component_requests_total", requests_doc).labels(*values)
        self.request_bytes = counter(
            "dynamo_component_request_bytes_total",
            "Total number of bytes received in requests by work handler",
        ).labels(*values)
        self.response_bytes = counter(
            "dynamo_component_response_bytes_total",
            "Total number of bytes sent in responses by work handler",
        ).labels(*values)
        self.cancellations = counter(
            "dynamo_component_cancellation_total",
            "Total number of requests cancelled by work handler",
        ).labels(*values)
        self.errors = Counter(
            "dynamo_component_errors_total",
            "Total number of errors in work handler processing",
            [*names, "error_type"],
            registry=reg,
        )
        self._values = values
        inflight_doc = "Number of requests currently being processed by work handler"
        if "metrics.family-type" in self.violations:
            self.inflight_counter = Counter(
                "dynamo_component_inflight_requests", inflight_doc, names, registry=reg
            ).labels(*values)
            self.inflight: Gauge | None = None
        else:
            self.inflight = Gauge(
                "dynamo_component_inflight_requests", inflight_doc, names, registry=reg
            ).labels(*values)
        self.duration = Histogram(
            "dynamo_component_request_duration_seconds",
            "Time spent processing requests by work handler",
            names,
            buckets=_DURATION_BUCKETS,
            registry=reg,
        ).labels(*values)
        add_uptime(reg, worker_id)
        Counter(
            "dynamo_component_kv_publisher_engines_dropped_events_total",
            "Total number of raw events dropped by engines before reaching publisher "
            "(detected via event_id gaps)",
            ["dynamo_component", "dynamo_namespace", "worker_id"],
            registry=reg,
        ).labels(component, namespace, hex_id)
        self.running = engine_gauge(
            "vllm:num_requests_running", "Number of requests in model execution batches."
        )
        self.waiting = engine_gauge(
            "vllm:num_requests_waiting", "Number of requests waiting to be processed."
        )
        self.kv_usage = engine_gauge(
            "vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage."
        )

    def started(self, request_bytes: int) -> None:
        """A request arrived."""
        self.requests.inc()
        self.request_bytes.inc(request_bytes)
        if self.inflight is not None:
            self.inflight.inc()
        else:
            self.inflight_counter.inc()

    def finished(self, seconds: float, response_bytes: int, *, cancelled: bool) -> None:
        """A request ended after ``seconds``."""
        if self.inflight is not None:
            self.inflight.dec()
        if "metrics.requests-total-exact" in self.violations:
            self.requests.inc()
        self.duration.observe(seconds)
        self.response_bytes.inc(response_bytes)
        if cancelled:
            self.cancellations.inc()

    def error(self, error_type: str) -> None:
        """A request failed."""
        self.errors.labels(*self._values, error_type).inc()

    def render(self) -> str:
        """The text exposition (violation modes applied)."""
        text = prometheus_client.generate_latest(self.registry).decode("utf-8")
        if "metrics.counters-monotonic" in self.violations:
            self.request_bytes.reset()
        if "metrics.histogram-cumulative" in self.violations:
            text = _INF_BUCKET.sub(lambda m: f"{m.group(1)} {float(m.group(2)) + 1.0}", text)
        if "metrics.exposition-parses" in self.violations:
            text += "dynamo_component_broken{worker_id= 1\n"
        return text
